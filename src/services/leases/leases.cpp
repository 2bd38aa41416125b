#include "services/leases/leases.h"

#include <chrono>
#include <random>

namespace ctrd::services::leases {
namespace {

std::string generated_id() {
  static constexpr char kUrlBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  const uint32_t bits = rd() & 0xffffff;  // three random bytes, four base64 characters
  std::string suffix;
  for (int shift = 18; shift >= 0; shift -= 6) suffix += kUrlBase64[(bits >> shift) & 0x3f];
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() % 1000000000;
  return std::to_string(nanos) + "-" + suffix;
}

}  // namespace

errdefs::StatusOr<metadata::Lease> LeasesService::create(const std::string& ns, std::string id,
                                                         const metadata::Labels& labels) {
  if (id.empty()) id = generated_id();
  return db_->leases(ns).create(id, labels);
}

errdefs::Status LeasesService::remove(const std::string& ns, const std::string& id, bool sync) {
  CTRD_RETURN_IF_ERROR(db_->leases(ns).remove(id));
  if (!sync) return errdefs::Status::Ok();
  auto collected = gc_->collect_now();
  return collected.ok() ? errdefs::Status::Ok() : collected.status().with_context("garbage collection");
}

errdefs::StatusOr<std::vector<metadata::Lease>> LeasesService::list(const std::string& ns,
                                                                    const std::vector<std::string>& filters) {
  return db_->leases(ns).list(filters);
}

errdefs::Status LeasesService::add_resource(const std::string& ns, const std::string& id,
                                            const metadata::LeaseResource& r) {
  return db_->leases(ns).add_resource(id, r);
}

errdefs::Status LeasesService::delete_resource(const std::string& ns, const std::string& id,
                                               const metadata::LeaseResource& r) {
  return db_->leases(ns).delete_resource(id, r);
}

errdefs::StatusOr<std::vector<metadata::LeaseResource>> LeasesService::list_resources(const std::string& ns,
                                                                                      const std::string& id) {
  return db_->leases(ns).list_resources(id);
}

}  // namespace ctrd::services::leases
