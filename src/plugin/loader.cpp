#include "plugin/loader.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "os/dirs.h"
#include "os/unique_fd.h"
#include "plugin/abi.h"

namespace ctrd::plugin {
namespace {

using errdefs::Status;
using errdefs::StatusOr;

using EntryFn = void (*)(Registry&);

// A stamp is a short line; anything longer is not one of ours.
constexpr size_t kMaxStampSize = 4096;
// Section names of a real shared object take a few hundred bytes.
constexpr uint64_t kMaxNameTableSize = 1 << 20;

#if defined(__x86_64__)
constexpr int kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr int kHostMachine = EM_AARCH64;
#elif defined(__i386__)
constexpr int kHostMachine = EM_386;
#elif defined(__arm__)
constexpr int kHostMachine = EM_ARM;
#elif defined(__riscv)
constexpr int kHostMachine = EM_RISCV;
#elif defined(__powerpc64__)
constexpr int kHostMachine = EM_PPC64;
#elif defined(__s390x__)
constexpr int kHostMachine = EM_S390;
#else
constexpr int kHostMachine = -1;  // unknown: leave the machine to dlopen
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char kHostData = ELFDATA2LSB;
#else
constexpr unsigned char kHostData = ELFDATA2MSB;
#endif
constexpr unsigned char kHostClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;

// Reads exactly `size` bytes at `offset`, or says the file is cut short.
Status read_at(int fd, void* buf, size_t size, uint64_t offset, uint64_t file_size, const std::string& path) {
  if (offset > file_size || size > file_size - offset) {
    return errdefs::InvalidArgument(path + ": truncated ELF file");
  }
  auto* out = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errdefs::FromErrno(errno, "read " + path);
    if (n == 0) return errdefs::InvalidArgument(path + ": truncated ELF file");
    out += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::string_view daemon_abi_stamp() { return CTRD_PLUGIN_ABI_STAMP; }

StatusOr<std::string> read_abi_stamp(const std::string& path) {
  os::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errdefs::FromErrno(errno, "open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errdefs::FromErrno(errno, "stat " + path);
  const auto file_size = static_cast<uint64_t>(st.st_size);

  ElfW(Ehdr) eh{};
  if (file_size < sizeof(eh)) return errdefs::InvalidArgument(path + ": not an ELF file (too short)");
  CTRD_RETURN_IF_ERROR(read_at(fd.get(), &eh, sizeof(eh), 0, file_size, path));
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    return errdefs::InvalidArgument(path + ": not an ELF file");
  }
  if (eh.e_ident[EI_CLASS] != kHostClass || eh.e_ident[EI_DATA] != kHostData ||
      (kHostMachine >= 0 && eh.e_machine != kHostMachine)) {
    return errdefs::InvalidArgument(path + ": ELF file for another machine (machine " +
                                    std::to_string(eh.e_machine) + ")");
  }
  if (eh.e_type != ET_DYN) return errdefs::InvalidArgument(path + ": not an ELF shared object");
  if (eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 || eh.e_shstrndx == SHN_UNDEF ||
      eh.e_shstrndx >= eh.e_shnum) {
    return errdefs::InvalidArgument(path + ": ELF file without a usable section header table");
  }

  std::vector<ElfW(Shdr)> sections(eh.e_shnum);
  CTRD_RETURN_IF_ERROR(
      read_at(fd.get(), sections.data(), sections.size() * sizeof(ElfW(Shdr)), eh.e_shoff, file_size, path));
  const ElfW(Shdr)& names = sections[eh.e_shstrndx];
  if (names.sh_size > kMaxNameTableSize) {
    return errdefs::InvalidArgument(path + ": ELF section name table too large");
  }
  std::string name_table(names.sh_size, '\0');
  CTRD_RETURN_IF_ERROR(
      read_at(fd.get(), name_table.data(), name_table.size(), names.sh_offset, file_size, path));

  const std::string_view wanted = CTRD_PLUGIN_ABI_SECTION;
  for (const auto& sh : sections) {
    if (sh.sh_name >= name_table.size()) continue;
    // Names are NUL-terminated inside the table; c_str() bounds the last one.
    if (std::string_view(name_table.c_str() + sh.sh_name) != wanted) continue;
    if (sh.sh_type != SHT_PROGBITS || sh.sh_size == 0 || sh.sh_size > kMaxStampSize) {
      return errdefs::InvalidArgument(path + ": malformed " + std::string(wanted) + " section");
    }
    std::string stamp(sh.sh_size, '\0');
    CTRD_RETURN_IF_ERROR(read_at(fd.get(), stamp.data(), stamp.size(), sh.sh_offset, file_size, path));
    stamp.resize(std::strlen(stamp.c_str()));
    return stamp;
  }
  return errdefs::NotFound(path + ": no ctrd ABI stamp (no " + std::string(wanted) +
                           " section: not built with CTRD_PLUGIN_ENTRY from ctrd's plugin headers)");
}

// Stamps run to some 130 characters; a file could carry any length.
constexpr size_t kLongestStampShown = 1024;

LoadedFile load_plugin_file(const std::string& path, Registry& registry, std::string_view expected_stamp) {
  LoadedFile out{.path = path};
  auto refuse = [&](std::string why) {
    out.status = errdefs::FailedPrecondition("refusing plugin file " + path + ": " + std::move(why));
    return out;
  };

  // Code that anyone but root could have replaced is never loaded.
  if (auto trusted = os::check_trusted_file(path); !trusted.ok()) return refuse(trusted.message());

  auto stamp = read_abi_stamp(path);
  if (!stamp.ok()) {
    std::string why = stamp.status().message();
    // read_abi_stamp names the file too; once per line is enough.
    if (why.starts_with(path + ": ")) why.erase(0, path.size() + 2);
    if (errdefs::IsNotFound(stamp.status()))
      why += "; ctrd expects stamp " + errdefs::quoted(expected_stamp, kLongestStampShown);
    return refuse(std::move(why));
  }
  if (*stamp != expected_stamp) {
    return refuse("ABI stamp mismatch: plugin has " + errdefs::quoted(*stamp, kLongestStampShown) +
                  ", ctrd expects " + errdefs::quoted(expected_stamp, kLongestStampShown));
  }

  // RTLD_NOW: a symbol the daemon does not export fails here, with its name,
  // not later in the middle of an init. RTLD_LOCAL: plugins do not see each other.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    return refuse(std::string("dlopen: ") + (err != nullptr ? err : "unknown error"));
  }
  // The handle is kept open for good (see the header), even when refused below:
  // its static constructors have run and may have left references to its code.
  ::dlerror();
  void* sym = ::dlsym(handle, CTRD_PLUGIN_ENTRY_SYMBOL);
  if (sym == nullptr) {
    const char* err = ::dlerror();
    return refuse(std::string("no entry point " CTRD_PLUGIN_ENTRY_SYMBOL) +
                  (err != nullptr ? std::string(" (") + err + ")" : std::string()));
  }
  auto entry = reinterpret_cast<EntryFn>(sym);

  // All or nothing per file: registrations land in a scratch registry first.
  Registry scratch;
  try {
    entry(scratch);
  } catch (const std::exception& e) {
    return refuse(std::string(CTRD_PLUGIN_ENTRY_SYMBOL " threw: ") + e.what());
  } catch (...) {
    return refuse(CTRD_PLUGIN_ENTRY_SYMBOL " threw an exception");
  }
  if (!scratch.rejected().empty()) {
    std::string why;
    for (const auto& s : scratch.rejected()) why += (why.empty() ? "" : "; ") + s.message();
    return refuse(why);
  }
  std::set<std::string> taken;
  for (const auto& r : registry.registrations()) taken.insert(r->uri());
  for (const auto& r : scratch.registrations()) {
    if (taken.contains(r->uri())) return refuse("plugin " + r->uri() + " is already registered");
  }
  for (const auto& r : scratch.registrations()) {
    if (auto s = registry.add(*r); !s.ok()) return refuse(s.message());
    out.registered.push_back(r->uri());
  }
  if (out.registered.empty()) return refuse("it registered no plugins");
  return out;
}

StatusOr<std::vector<LoadedFile>> load_plugin_dir(const std::string& dir, Registry& registry,
                                                  std::string_view expected_stamp) {
  namespace fs = std::filesystem;
  std::vector<LoadedFile> out;
  if (dir.empty()) return out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return out;
  if (ec) return errdefs::FromErrno(ec.value(), "read plugin_dir " + dir);

  std::vector<std::string> files;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".so") continue;
    std::error_code type_ec;
    if (!fs::is_regular_file(p, type_ec)) continue;  // follows symlinks, as dlopen does
    files.push_back(p.string());
  }
  if (ec) return errdefs::FromErrno(ec.value(), "read plugin_dir " + dir);
  std::sort(files.begin(), files.end());
  for (const auto& f : files) out.push_back(load_plugin_file(f, registry, expected_stamp));
  return out;
}

}  // namespace ctrd::plugin
