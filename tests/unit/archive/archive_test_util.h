// Helpers for the archive tests and the archive fuzz seeds: in-memory readers
// and writers, a tar builder on libarchive's writer (so the tests do not go
// through the code under test to make their input), temp dirs that clean up
// after themselves, and a snapshot of a tree to compare trees with.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "archive/archive.h"

#include "support/temp_dir.h"

namespace ctrd::archive::testing {

// Serves a string in chunks of at most `chunk` bytes (to exercise refills).
class StringReader : public Reader {
 public:
  explicit StringReader(std::string data, size_t chunk = size_t{1} << 30)
      : data_(std::move(data)), chunk_(chunk) {}
  errdefs::StatusOr<size_t> read(char* buf, size_t n) override {
    const size_t k = std::min({n, chunk_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string data_;
  size_t chunk_;
  size_t pos_ = 0;
};

class StringWriter : public Writer {
 public:
  errdefs::Status write(std::string_view data) override {
    out.append(data);
    return errdefs::Status::Ok();
  }
  std::string out;
};

// Reads a Reader to its end.
inline errdefs::StatusOr<std::string> read_all(Reader& reader, size_t chunk = 64 * 1024) {
  std::string out;
  std::string buf(chunk, '\0');
  for (;;) {
    auto n = reader.read(buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    out.append(buf.data(), *n);
  }
}

inline std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out = "sha256:";
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

// A directory under /tmp removed with everything in it when this goes away.
using TempDir = ::ctrd::testing::TempDir;

// Header fields of one TarBuilder entry.
struct TarMeta {
  int mode = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  time_t mtime = 1700000000;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// Builds a tar in memory with libarchive's PAX writer.
class TarBuilder {
 public:
  using Meta = TarMeta;

  TarBuilder() : a_(archive_write_new()) {
    archive_write_set_format_pax(a_);
    archive_write_set_bytes_in_last_block(a_, 1);
    archive_write_open(a_, &out_, nullptr, &TarBuilder::append, nullptr);
  }
  ~TarBuilder() { archive_write_free(a_); }
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  TarBuilder& file(const std::string& name, std::string_view data, Meta meta = {}) {
    archive_entry* e = start(name, AE_IFREG, meta);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_write_header(a_, e);
    if (!data.empty()) archive_write_data(a_, data.data(), data.size());
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& dir(const std::string& name, Meta meta = {.mode = 0755}) {
    return simple(name, AE_IFDIR, meta);
  }
  TarBuilder& symlink(const std::string& name, const std::string& target, Meta meta = {.mode = 0777}) {
    archive_entry* e = start(name, AE_IFLNK, meta);
    archive_entry_set_symlink(e, target.c_str());
    return finish(e);
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target, Meta meta = {}) {
    archive_entry* e = start(name, AE_IFREG, meta);
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    return finish(e);
  }
  TarBuilder& node(const std::string& name, unsigned type, unsigned major, unsigned minor, Meta meta = {}) {
    archive_entry* e = start(name, type, meta);
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
    return finish(e);
  }
  TarBuilder& whiteout(const std::string& name) { return file(name, "", Meta{.mode = 0}); }

  // The finished tar (end-of-archive marker included).
  std::string take() {
    archive_write_close(a_);
    return std::move(out_);
  }

 private:
  static la_ssize_t append(struct archive*, void* out, const void* buf, size_t n) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  archive_entry* start(const std::string& name, unsigned type, const Meta& meta) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, static_cast<mode_t>(meta.mode));
    archive_entry_set_uid(e, meta.uid);
    archive_entry_set_gid(e, meta.gid);
    archive_entry_set_mtime(e, meta.mtime, 0);
    for (const auto& [k, v] : meta.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    return e;
  }
  TarBuilder& simple(const std::string& name, unsigned type, const Meta& meta) {
    return finish(start(name, type, meta));
  }
  TarBuilder& finish(archive_entry* e) {
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }

  struct archive* a_;
  std::string out_;
};

// What a tree holds, path -> a description of type, owner, mode, content,
// link target, device, xattrs (and mtime for non-directories when asked).
using Snapshot = std::map<std::string, std::string>;

inline std::string describe(const std::string& full, const struct stat& st, bool with_mtime) {
  std::string d = "mode=" + std::to_string(st.st_mode) + " uid=" + std::to_string(st.st_uid) +
                  " gid=" + std::to_string(st.st_gid);
  if (S_ISREG(st.st_mode)) {
    std::string content;
    if (FILE* f = std::fopen(full.c_str(), "rb")) {
      char buf[65536];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) content.append(buf, n);
      std::fclose(f);
    }
    d += " data=" + sha256_hex(content);
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    const ssize_t n = ::readlink(full.c_str(), target, sizeof(target));
    d += " link=" + std::string(target, n > 0 ? static_cast<size_t>(n) : 0);
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    d += " rdev=" + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
  }
  if (with_mtime && !S_ISDIR(st.st_mode)) d += " mtime=" + std::to_string(st.st_mtim.tv_sec);
  char names[4096];
  const ssize_t len = ::llistxattr(full.c_str(), names, sizeof(names));
  std::vector<std::string> keys;
  for (ssize_t pos = 0; pos < len;) {
    keys.emplace_back(names + pos);
    pos += static_cast<ssize_t>(keys.back().size()) + 1;
  }
  std::sort(keys.begin(), keys.end());
  for (const std::string& k : keys) {
    char value[4096];
    const ssize_t n = ::lgetxattr(full.c_str(), k.c_str(), value, sizeof(value));
    d += " xattr:" + k + "=" + std::string(value, n > 0 ? static_cast<size_t>(n) : 0);
  }
  return d;
}

inline Snapshot snapshot(const std::string& root, bool with_mtime = true) {
  Snapshot out;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    const std::string full = it->path().string();
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) continue;
    out[full.substr(root.size())] = describe(full, st, with_mtime);
  }
  return out;
}

}  // namespace ctrd::archive::testing
