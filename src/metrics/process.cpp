#include "metrics/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace ctrd::metrics {

namespace {

struct ProcStat {
  double utime_ticks = 0;
  double stime_ticks = 0;
  double start_ticks = 0;
  double vsize_bytes = 0;
  double rss_pages = 0;
};

// /proc/self/stat: the command (field 2) may contain spaces and parentheses,
// so fields are counted from the last ')'.
bool read_stat(ProcStat& out) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(line.substr(paren + 1));
  std::string f;
  // After ')' comes field 3 (state); utime is 14, stime 15, starttime 22,
  // vsize 23, rss 24.
  for (int field = 3; field <= 24 && fields >> f; ++field) {
    const double v = field == 3 ? 0 : std::strtod(f.c_str(), nullptr);
    if (field == 14) out.utime_ticks = v;
    if (field == 15) out.stime_ticks = v;
    if (field == 22) out.start_ticks = v;
    if (field == 23) out.vsize_bytes = v;
    if (field == 24) out.rss_pages = v;
  }
  return true;
}

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

double open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the descriptor opendir itself holds
}

class ProcessCollector final : public Collector {
 public:
  ProcessCollector() : ticks_(static_cast<double>(::sysconf(_SC_CLK_TCK))), boot_(boot_time_seconds()) {}

  void collect(Writer& w) override {
    ProcStat st;
    if (read_stat(st)) {
      w.header("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
               Type::kCounter);
      w.sample("process_cpu_seconds_total", {}, (st.utime_ticks + st.stime_ticks) / ticks_);
      w.header("process_resident_memory_bytes", "Resident memory size in bytes.", Type::kGauge);
      w.sample("process_resident_memory_bytes", {},
               st.rss_pages * static_cast<double>(::sysconf(_SC_PAGESIZE)));
      w.header("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
               Type::kGauge);
      w.sample("process_start_time_seconds", {}, boot_ + st.start_ticks / ticks_);
      w.header("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::kGauge);
      w.sample("process_virtual_memory_bytes", {}, st.vsize_bytes);
    }
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      w.header("process_max_fds", "Maximum number of open file descriptors.", Type::kGauge);
      w.sample("process_max_fds", {}, static_cast<double>(lim.rlim_cur));
    }
    w.header("process_open_fds", "Number of open file descriptors.", Type::kGauge);
    w.sample("process_open_fds", {}, open_fds());
  }

 private:
  const double ticks_;
  const double boot_;
};

}  // namespace

std::shared_ptr<Collector> process_collector() { return std::make_shared<ProcessCollector>(); }

}  // namespace ctrd::metrics
