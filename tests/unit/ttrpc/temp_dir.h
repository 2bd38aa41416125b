// A temporary directory for the ttRPC tests' sockets, removed on destruction.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace ctrd::ttrpc {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ctrd-ttrpc-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ctrd::ttrpc
