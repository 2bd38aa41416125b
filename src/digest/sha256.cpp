#include "digest/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace ctrd::digest {
namespace {

// Fetched once: an implicit fetch on every init costs a provider lookup.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

// OpenSSL only fails these on allocation failure or a broken provider; neither
// leaves a digest worth reporting, and callers cannot recover from either.
void check(int ok) {
  if (ok != 1) std::abort();
}

}  // namespace

void Sha256::CtxDeleter::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) std::abort();
  check(EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr));
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) {
  if (!data.empty()) check(EVP_DigestUpdate(ctx_.get(), data.data(), data.size()));
}

void Sha256::reset() { check(EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr)); }

std::string Sha256::hex() const {
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> copy(EVP_MD_CTX_new());
  if (!copy) std::abort();
  check(EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()));
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  check(EVP_DigestFinal_ex(copy.get(), sum, &len));
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(len) * 2, '\0');
  for (unsigned int i = 0; i < len; ++i) {
    out[size_t{2} * i] = kHexDigits[sum[i] >> 4];
    out[size_t{2} * i + 1] = kHexDigits[sum[i] & 0xf];
  }
  return out;
}

std::string Sha256::digest() const { return "sha256:" + hex(); }

std::string Sha256::hex_of(std::string_view data) {
  Sha256 hasher;
  hasher.update(data);
  return hasher.hex();
}

}  // namespace ctrd::digest
