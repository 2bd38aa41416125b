#include "archive_fuzz_entry.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

#include "archive/archive.h"
#include "archive_test_util.h"

namespace ctrd::archive::fuzz {
namespace {

[[noreturn]] void fail(std::string_view what) {
  std::fprintf(stderr, "archive fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// Everything observable about a tree except what lives under `skip`:
// metadata down to the inode and nanosecond, contents, link targets, xattrs.
std::map<std::string, std::string> observe(const std::string& top, const std::string& skip) {
  std::map<std::string, std::string> out;
  struct stat st {};
  if (::lstat(top.c_str(), &st) == 0)
    out["."] = std::to_string(st.st_mode) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
               std::to_string(st.st_mtim.tv_nsec) + " " + std::to_string(st.st_nlink);
  std::error_code error;
  auto it = std::filesystem::recursive_directory_iterator(top, error);
  for (; !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    const std::string full = it->path().string();
    if (full == skip) {
      it.disable_recursion_pending();
      continue;
    }
    if (::lstat(full.c_str(), &st) != 0) fail("cannot stat " + full);
    std::string d = testing::describe(full, st, true);
    d += " ino=" + std::to_string(st.st_ino) + " nlink=" + std::to_string(st.st_nlink) +
         " mtime_ns=" + std::to_string(st.st_mtim.tv_nsec) + " size=" + std::to_string(st.st_size);
    out[full.substr(top.size())] = d;
  }
  if (error) fail("cannot walk " + top + ": " + error.message());
  return out;
}

void write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
  if (!out) fail("cannot write " + path);
}

void apply_once(const std::string& data, const std::string& top, const ApplyOptions& options, size_t chunk) {
  const std::string root = top + "/root";
  if (::mkdir(root.c_str(), 0755) != 0) fail("cannot create the root");
  const auto before = observe(top, root);

  testing::StringReader reader(data, chunk);
  auto result = apply(reader, root, options);
  if (result.ok()) {
    if (result->digest != testing::sha256_hex(data)) fail("the digest is not the sha256 of the input");
    if (result->size != static_cast<int64_t>(data.size())) fail("the size is not the input's");
  } else if (result.status().code() == errdefs::Code::kOk || result.status().message().empty()) {
    fail("an error without a message");
  }

  if (observe(top, root) != before) fail("something outside the root changed");
  std::error_code error;
  std::filesystem::remove_all(root, error);
  if (error) fail("cannot remove the root: " + error.message());
}

}  // namespace

int run_one_input(const uint8_t* bytes, size_t size) {
  const std::string data(reinterpret_cast<const char*>(bytes), size);
  char tmpl[] = "/tmp/ctrd-archive-fuzz-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) fail("mkdtemp");
  const std::string top = tmpl;

  // A sentinel tree the layer must not reach, and a lower layer (for
  // overlay hard links) it must not change.
  const std::string outside = top + "/outside";
  const std::string lower = top + "/lower";
  if (::mkdir(outside.c_str(), 0755) != 0 || ::mkdir((outside + "/dir").c_str(), 0700) != 0 ||
      ::mkdir(lower.c_str(), 0755) != 0 || ::mkdir((lower + "/bin").c_str(), 0755) != 0)
    fail("cannot create the fixture");
  write_file(outside + "/sentinel", "sentinel");
  write_file(outside + "/dir/file", "file");
  write_file(lower + "/bin/tool", "tool");
  if (::symlink("/etc/passwd", (outside + "/link").c_str()) != 0) fail("cannot create the fixture symlink");

  apply_once(data, top, ApplyOptions{}, size_t{1} << 20);
  apply_once(data, top, ApplyOptions{.whiteouts = ApplyOptions::Whiteouts::kOverlay, .lowers = {lower}}, 513);

  std::error_code error;
  std::filesystem::remove_all(top, error);
  return 0;
}

}  // namespace ctrd::archive::fuzz
