// An in-memory snapshots::Snapshotter with the backend contract the metadata
// store relies on (parents must be committed, no removal with children), and
// counters the tests inspect.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "errdefs/errdefs.h"
#include "snapshots/snapshotter.h"

namespace ctrd::metadata::test_support {

class FakeSnapshotter : public snapshots::Snapshotter {
 public:
  using Info = snapshots::Info;
  using Kind = snapshots::Kind;

  errdefs::StatusOr<Info> stat(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = snapshots_.find(std::string(key));
    if (it == snapshots_.end()) return errdefs::NotFound("backend snapshot " + std::string(key));
    return it->second;
  }
  errdefs::StatusOr<Info> update(const Info& info, const std::vector<std::string>& fieldpaths) override {
    std::lock_guard lock(mu_);
    auto it = snapshots_.find(info.name);
    if (it == snapshots_.end()) return errdefs::NotFound("backend snapshot " + info.name);
    if (fieldpaths.empty()) it->second.labels = info.labels;
    for (const auto& path : fieldpaths) {
      if (path == "labels") {
        it->second.labels = info.labels;
      } else if (path.starts_with("labels.")) {
        std::string key = path.substr(7);
        auto label = info.labels.find(key);
        if (label == info.labels.end()) {
          it->second.labels.erase(key);
        } else {
          it->second.labels[key] = label->second;
        }
      }
    }
    return it->second;
  }
  errdefs::StatusOr<snapshots::Usage> usage(std::string_view key) override {
    CTRD_ASSIGN_OR_RETURN(Info info, stat(key));
    return snapshots::Usage{static_cast<int64_t>(info.name.size()), 1};
  }
  errdefs::StatusOr<std::vector<mount::Mount>> mounts(std::string_view key) override {
    CTRD_ASSIGN_OR_RETURN(Info info, stat(key));
    if (info.kind == Kind::kCommitted) return errdefs::FailedPrecondition("committed " + info.name);
    return mounts_of(info);
  }
  errdefs::StatusOr<std::vector<mount::Mount>> prepare(std::string_view key, std::string_view parent,
                                                       const snapshots::Labels& labels) override {
    return create(key, parent, labels, Kind::kActive);
  }
  errdefs::StatusOr<std::vector<mount::Mount>> view(std::string_view key, std::string_view parent,
                                                    const snapshots::Labels& labels) override {
    return create(key, parent, labels, Kind::kView);
  }
  errdefs::Status commit(std::string_view name, std::string_view key,
                         const snapshots::Labels& labels) override {
    std::lock_guard lock(mu_);
    auto it = snapshots_.find(std::string(key));
    if (it == snapshots_.end()) return errdefs::NotFound("backend snapshot " + std::string(key));
    if (it->second.kind != Kind::kActive)
      return errdefs::FailedPrecondition("not active " + std::string(key));
    if (snapshots_.count(std::string(name)) != 0)
      return errdefs::AlreadyExists("backend " + std::string(name));
    Info committed = it->second;
    committed.name = name;
    committed.kind = Kind::kCommitted;
    committed.labels = labels;
    snapshots_.erase(it);
    snapshots_.emplace(committed.name, committed);
    return errdefs::Status::Ok();
  }
  errdefs::Status remove(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = snapshots_.find(std::string(key));
    if (it == snapshots_.end()) return errdefs::NotFound("backend snapshot " + std::string(key));
    for (const auto& [k, info] : snapshots_) {
      if (info.parent == key) return errdefs::FailedPrecondition("backend snapshot has children");
    }
    snapshots_.erase(it);
    removed_.push_back(std::string(key));
    return errdefs::Status::Ok();
  }
  errdefs::Status walk(const std::function<errdefs::Status(const Info&)>& fn,
                       const std::vector<std::string>&) override {
    std::vector<Info> infos;
    {
      std::lock_guard lock(mu_);
      for (const auto& [k, info] : snapshots_) infos.push_back(info);
    }
    for (const auto& info : infos) CTRD_RETURN_IF_ERROR(fn(info));
    return errdefs::Status::Ok();
  }
  errdefs::Status cleanup() override {
    std::lock_guard lock(mu_);
    ++cleanups_;
    return errdefs::Status::Ok();
  }

  // Test inspection.
  std::set<std::string> keys() {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& [k, info] : snapshots_) out.insert(k);
    return out;
  }
  std::vector<std::string> removed() {
    std::lock_guard lock(mu_);
    return removed_;
  }
  int cleanups() {
    std::lock_guard lock(mu_);
    return cleanups_;
  }

 private:
  errdefs::StatusOr<std::vector<mount::Mount>> create(std::string_view key, std::string_view parent,
                                                      const snapshots::Labels& labels, Kind kind) {
    std::lock_guard lock(mu_);
    if (snapshots_.count(std::string(key)) != 0) return errdefs::AlreadyExists("backend " + std::string(key));
    if (!parent.empty()) {
      auto p = snapshots_.find(std::string(parent));
      if (p == snapshots_.end()) return errdefs::NotFound("backend parent " + std::string(parent));
      if (p->second.kind != Kind::kCommitted) return errdefs::InvalidArgument("parent not committed");
    }
    auto now = snapshots::Clock::now();
    Info info{std::string(key), std::string(parent), kind, labels, now, now};
    snapshots_.emplace(info.name, info);
    return mounts_of(info);
  }
  static std::vector<mount::Mount> mounts_of(const Info& info) {
    return {{"bind", "/fake/" + info.name, "", {info.kind == Kind::kView ? "ro" : "rw"}}};
  }

  std::mutex mu_;
  std::map<std::string, Info> snapshots_;
  std::vector<std::string> removed_;
  int cleanups_ = 0;
};

}  // namespace ctrd::metadata::test_support
