#include "runtime/v2/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include <fstream>
#include <sstream>

#include "log/log.h"
#include "os/process.h"
#include "protobuf/time.h"

namespace ctrd::runtime::v2 {
namespace {

namespace shimapi = containerd::task::v2;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == ' ') ++start;
  return s.substr(start);
}

std::vector<std::string> shim_argv(const ShimBinary& b, const std::string& ns) {
  return {b.path, "-namespace", ns, "-address", b.grpc_address, "-publish-binary", b.publish_binary};
}

os::RunOptions shim_run_options(const ShimBinary& b, const Bundle& bundle) {
  os::RunOptions run;
  run.working_dir = bundle.path();
  run.env = os::current_environment();
  run.env.push_back("GOMAXPROCS=2");
  run.env.push_back("TTRPC_ADDRESS=" + b.ttrpc_address);
  if (b.sched_core) run.env.push_back("SCHED_CORE=1");
  // A signal to the daemon's process group must not reach its shims.
  run.new_process_group = true;
  run.timeout = std::chrono::seconds(30);
  return run;
}

std::string describe_failure(const std::string& what, const os::RunResult& r) {
  std::string detail = trim(r.err.empty() ? r.out : r.err);
  std::string how = r.signal != 0 ? "killed by signal " + std::to_string(r.signal)
                                  : "exit status " + std::to_string(r.exit_code);
  return what + ": " + how + (detail.empty() ? "" : ": " + detail);
}

}  // namespace

bool shim_gone(const errdefs::Status& status) { return status.code() == errdefs::Code::kUnavailable; }

// ---- ShimLogs ----

ShimLogs::~ShimLogs() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)::write(wake_.get(), &one, sizeof one);
    thread_.join();
  }
}

errdefs::StatusOr<std::unique_ptr<ShimLogs::Handle>> ShimLogs::open(const Bundle& bundle) {
  const std::string path = bundle.file("log");
  if (::mkfifo(path.c_str(), 0700) != 0 && errno != EEXIST)
    return errdefs::FromErrno(errno, "mkfifo " + path);
  // Read-write so that opening never blocks and the shim's writer never
  // sees a missing reader, even across a daemon restart.
  os::UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return errdefs::FromErrno(errno, "open " + path);
  const int raw = fd.get();
  std::lock_guard lock(mu_);
  if (!thread_.joinable()) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!epoll_.valid() || !wake_.valid()) return errdefs::FromErrno(errno, "shim log epoll");
    epoll_event wake_event{.events = EPOLLIN, .data = {.fd = wake_.get()}};
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &wake_event);
    thread_ = std::thread([this] { loop(); });
  }
  epoll_event ev{.events = EPOLLIN, .data = {.fd = raw}};
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev) != 0) return errdefs::FromErrno(errno, "epoll_ctl");
  fifos_.emplace(raw, std::move(fd));
  return std::make_unique<Handle>(this, raw);
}

void ShimLogs::forget(int fd) {
  std::lock_guard lock(mu_);
  auto it = fifos_.find(fd);
  if (it == fifos_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  fifos_.erase(it);
}

void ShimLogs::loop() {
  epoll_event events[16];
  char buf[16384];
  while (true) {
    const int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_.get()) return;
      std::lock_guard lock(mu_);
      // Forgotten (and perhaps closed) since epoll_wait returned.
      if (!fifos_.contains(fd)) continue;
      ssize_t got = 0;
      while ((got = ::read(fd, buf, sizeof buf)) > 0) {
        // The shim formats its own lines (logfmt, like ours).
        (void)::write(STDERR_FILENO, buf, static_cast<size_t>(got));
      }
    }
  }
}

// ---- Shim ----

Shim::Shim(std::unique_ptr<ShimLogs::Handle> log, const std::string& ns) : log_(std::move(log)) {
  metadata_.emplace_back(std::string(ttrpc::kNamespaceKey), ns);
}

Shim::~Shim() { close(); }

void Shim::close() {
  closing_->store(true);
  if (client_) client_->close();
}

errdefs::Status Shim::dial(const std::string& address, ttrpc::ClientLoop& loop,
                           std::function<void()> on_lost) {
  ttrpc::ClientOptions options;
  options.loop = &loop;
  options.on_close = [closing = closing_, on_lost = std::move(on_lost)] {
    if (!closing->load() && on_lost) on_lost();
  };
  CTRD_ASSIGN_OR_RETURN(client_, ttrpc::Client::connect(address, std::move(options)));
  return errdefs::Status::Ok();
}

errdefs::StatusOr<std::shared_ptr<Shim>> Shim::start(const ShimBinary& binary, const Bundle& bundle,
                                                     const std::optional<runtime::Any>& options,
                                                     ShimConnections& connections,
                                                     std::function<void()> on_lost) {
  CTRD_ASSIGN_OR_RETURN(auto log, connections.logs.open(bundle));
  std::vector<std::string> argv = shim_argv(binary, bundle.ns());
  argv.insert(argv.end(), {"-id", bundle.id()});
  if (binary.debug) argv.emplace_back("-debug");
  argv.emplace_back("start");
  os::RunOptions run = shim_run_options(binary, bundle);
  if (options) run.stdin_data = options->SerializeAsString();
  CTRD_ASSIGN_OR_RETURN(os::RunResult result, os::run(argv, run));
  if (!result.ok()) return errdefs::Unknown(describe_failure("start shim " + binary.path, result));
  const std::string address = trim(result.out + (result.out.empty() ? result.err : ""));

  std::ofstream(bundle.file("shim-binary-path"), std::ios::trunc) << binary.path;
  std::shared_ptr<Shim> shim(new Shim(std::move(log), bundle.ns()));
  if (errdefs::Status dialed = shim->dial(address, connections.loop, std::move(on_lost)); !dialed.ok()) {
    return dialed.with_context("connect to shim of " + bundle.id());
  }
  return shim;
}

errdefs::StatusOr<std::shared_ptr<Shim>> Shim::connect(const Bundle& bundle, ShimConnections& connections,
                                                       std::function<void()> on_lost) {
  std::ifstream in(bundle.file("address"));
  if (!in) return errdefs::NotFound("no shim address in " + bundle.path());
  std::stringstream text;
  text << in.rdbuf();
  const std::string address = trim(text.str());
  if (address.empty()) return errdefs::NotFound("empty shim address in " + bundle.path());
  CTRD_ASSIGN_OR_RETURN(auto log, connections.logs.open(bundle));
  std::shared_ptr<Shim> shim(new Shim(std::move(log), bundle.ns()));
  CTRD_RETURN_IF_ERROR(shim->dial(address, connections.loop, std::move(on_lost)));
  return shim;
}

errdefs::StatusOr<runtime::Exit> Shim::cleanup(const ShimBinary& binary, const Bundle& bundle) {
  std::vector<std::string> argv = shim_argv(binary, bundle.ns());
  argv.insert(argv.end(), {"-id", bundle.id(), "-bundle", bundle.path(), "delete"});
  os::RunOptions run = shim_run_options(binary, bundle);
  CTRD_ASSIGN_OR_RETURN(os::RunResult result, os::run(argv, run));
  if (!result.ok()) return errdefs::Unknown(describe_failure("shim delete " + bundle.id(), result));
  if (!result.err.empty())
    log::warn("shim cleanup warnings", {{"id", bundle.id()}, {"output", trim(result.err)}});
  shimapi::DeleteResponse response;
  if (!response.ParseFromString(result.out))
    return errdefs::Internal("shim delete " + bundle.id() + ": unreadable response");
  return runtime::Exit{response.pid(), response.exit_status(),
                       protobuf::from_timestamp(response.exited_at())};
}

}  // namespace ctrd::runtime::v2
