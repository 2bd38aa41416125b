#include "diff/stream_processor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "diff/diff.h"
#include "log/log.h"
#include "os/dirs.h"
#include "os/process.h"
#include "os/unique_fd.h"

namespace ctrd::diff {

using errdefs::Status;
using errdefs::StatusOr;
using os::UniqueFd;

namespace {

using namespace std::chrono_literals;

inline constexpr std::string_view kMediaTypeEnv = "STREAM_PROCESSOR_MEDIATYPE";
// Bigger pipes than the default 64 KiB: fewer wake-ups per layer.
inline constexpr int kPipeSize = 1 << 20;
inline constexpr size_t kChunk = 256 << 10;
// Enough of a processor's stderr to explain a failure.
inline constexpr size_t kStderrKept = 4096;
// After its output ended, how long a processor may take to exit.
inline constexpr auto kExitTimeout = 30s;
// After the consumer failed: how long to let processors that already ended
// their output exit on their own (so their status, not ours, is reported) ...
inline constexpr auto kSettleTime = 100ms;
// ... and, once their stdout is closed, to stop before they are killed.
inline constexpr auto kStopGrace = 2s;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

StatusOr<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errdefs::FromErrno(errno, "pipe");
  (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);  // best effort: the limit may be lower
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Go's exec keeps the last of duplicate keys; glibc's getenv finds the first.
// Keeping only the last makes a configured or added variable win.
std::vector<std::string> dedup_env(const std::vector<std::string>& env) {
  std::vector<std::string> out;
  for (const auto& kv : env) {
    const std::string_view key = std::string_view(kv).substr(0, kv.find('='));
    std::erase_if(out,
                  [&](const std::string& e) { return std::string_view(e).substr(0, e.find('=')) == key; });
    out.push_back(kv);
  }
  return out;
}

// The payload as a readable file: a memfd needs no thread to feed it.
StatusOr<UniqueFd> payload_file(const std::string& data) {
  UniqueFd fd(::memfd_create("stream-processor-payload", MFD_CLOEXEC));
  if (!fd.valid()) return errdefs::FromErrno(errno, "memfd_create");
  std::string_view left = data;
  while (!left.empty()) {
    const ssize_t n = ::write(fd.get(), left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errdefs::FromErrno(errno, "write payload");
    left.remove_prefix(static_cast<size_t>(n));
  }
  if (::lseek(fd.get(), 0, SEEK_SET) < 0) return errdefs::FromErrno(errno, "seek payload");
  return fd;
}

// Reads a processor's stdout.
class FdReader final : public archive::Reader {
 public:
  explicit FdReader(UniqueFd fd) : fd_(std::move(fd)) {}
  StatusOr<size_t> read(char* buf, size_t n) override {
    for (;;) {
      const ssize_t got = ::read(fd_.get(), buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return errdefs::FromErrno(errno, "read stream processor output");
    }
  }

 private:
  UniqueFd fd_;
};

std::string first_line(std::string_view text) {
  while (!text.empty() && (text.front() == '\n' || text.front() == '\r')) text.remove_prefix(1);
  text = text.substr(0, text.find('\n'));
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return std::string(text);
}

}  // namespace

// One running processor: its child, the pipe of its output, and a helper
// thread that feeds its stdin (first stage only) and keeps the start of its
// stderr. The helper stops when told or when both pipes are done, so it can
// never outlive the stage even if a grandchild keeps the pipes open.
class ProcessorStage {
 public:
  // Exactly one of `source` (read by the helper) or `stdin_fd` (a previous
  // stage's stdout, handed to the child) is set.
  static StatusOr<std::unique_ptr<ProcessorStage>> start(const StreamProcessorSpec& spec,
                                                         std::string media_type,
                                                         std::unique_ptr<archive::Reader> source,
                                                         UniqueFd stdin_fd, const std::string* payload) {
    CTRD_ASSIGN_OR_RETURN(std::string program, os::look_path(spec.path));
    if (auto trusted = os::check_trusted_file(program); !trusted.ok()) {
      log::warn("refusing stream processor",
                {{"id", spec.id}, {"path", program}, {"error", trusted.message()}});
      return errdefs::PermissionDenied("refusing stream processor " + spec.id + " (" + program +
                                       "): " + trusted.message());
    }
    CTRD_ASSIGN_OR_RETURN(Pipe out, make_pipe());
    CTRD_ASSIGN_OR_RETURN(Pipe err, make_pipe());
    CTRD_ASSIGN_OR_RETURN(Pipe stop, make_pipe());
    Pipe in;
    if (source) {
      CTRD_ASSIGN_OR_RETURN(in, make_pipe());
      stdin_fd = std::move(in.read);
    }
    UniqueFd payload_fd;
    if (payload != nullptr) {
      CTRD_ASSIGN_OR_RETURN(payload_fd, payload_file(*payload));
    }

    std::vector<std::string> argv{program};
    argv.insert(argv.end(), spec.args.begin(), spec.args.end());
    std::vector<std::string> env = os::current_environment();
    env.insert(env.end(), spec.env.begin(), spec.env.end());
    env.push_back(std::string(kMediaTypeEnv) + "=" + media_type);
    std::vector<int> fds{stdin_fd.get(), out.write.get(), err.write.get()};
    if (payload_fd.valid()) fds.push_back(payload_fd.get());
    // Its own process group: a script's children are killed with it.
    CTRD_ASSIGN_OR_RETURN(
        pid_t pid,
        os::spawn(argv, os::SpawnOptions{.env = dedup_env(env), .new_process_group = true, .fds = fds}));

    auto stage = std::unique_ptr<ProcessorStage>(new ProcessorStage(spec.id, std::move(media_type), pid));
    stage->stdout_ = std::move(out.read);
    stage->stop_ = std::move(stop.write);
    stage->helper_ = std::thread(&ProcessorStage::run_helper, stage.get(), std::move(source),
                                 std::move(in.write), std::move(err.read), std::move(stop.read));
    return stage;
  }

  ~ProcessorStage() {
    if (!reaped_) {
      kill();
      reap(/*block=*/true);
    }
    stop_helper();
  }
  ProcessorStage(const ProcessorStage&) = delete;
  ProcessorStage& operator=(const ProcessorStage&) = delete;

  const std::string& id() const { return id_; }
  UniqueFd take_stdout() { return std::move(stdout_); }
  bool reaped() const { return reaped_; }

  // Collects the exit status; false when `block` is false and it still runs.
  bool reap(bool block) {
    if (reaped_) return true;
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == 0) return false;
    reaped_ = true;
    status_ = r == pid_ ? status : 0;
    return true;
  }

  // Waits up to `timeout` for the child to exit and reaps it.
  bool wait_for_exit(std::chrono::steady_clock::duration timeout) {
    if (reap(false)) return true;
    if (!pidfd_.valid()) return reap(true);  // no pidfd (old kernel): wait without a bound
    pollfd p{pidfd_.get(), POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      const int ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
      if (ready > 0) return reap(true);
      if (ready == 0) return reap(false);
      if (errno != EINTR) return reap(false);
    }
  }

  void kill() {
    // Only while the leader is unreaped: its pid, and so the group id, cannot be reused.
    if (reaped_) return;
    killed_ = true;
    ::kill(-pid_, SIGKILL);
  }

  // Ends the helper after a final read of stderr. Call once the child is reaped.
  void stop_helper() {
    stop_.reset();
    if (helper_.joinable()) helper_.join();
  }

  // The failure of the processor itself (after stop_helper), if it failed.
  std::optional<Status> failure() const {
    if (!feed_error_.ok()) return feed_error_.with_context("stream processor \"" + id_ + "\" input");
    if (!reaped_ || killed_ || (WIFEXITED(status_) && WEXITSTATUS(status_) == 0)) return std::nullopt;
    return errdefs::Unknown("stream processor \"" + id_ + "\" failed: " + describe());
  }

  // "exit status 1: <first line of stderr>", as far as known.
  std::string describe() const {
    std::string s;
    if (!reaped_) {
      s = "still running";
    } else if (killed_) {
      s = "killed";
    } else if (WIFEXITED(status_)) {
      s = "exit status " + std::to_string(WEXITSTATUS(status_));
    } else if (WIFSIGNALED(status_)) {
      s = "signal " +
          std::string(::sigabbrev_np(WTERMSIG(status_)) ? ::sigabbrev_np(WTERMSIG(status_)) : "?");
    }
    if (std::string line = first_line(stderr_); !line.empty()) s += ": " + line;
    return s;
  }

 private:
  ProcessorStage(std::string id, std::string media_type, pid_t pid)
      : id_(std::move(id)), media_type_(std::move(media_type)), pid_(pid) {
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  }

  void keep_stderr(UniqueFd& err) {
    char buf[4096];
    while (err.valid()) {
      const ssize_t n = ::read(err.get(), buf, sizeof buf);
      if (n > 0) {
        const size_t room = kStderrKept - std::min(kStderrKept, stderr_.size());
        stderr_.append(buf, std::min(room, static_cast<size_t>(n)));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || errno != EAGAIN) err.reset();
      return;
    }
  }

  void run_helper(std::unique_ptr<archive::Reader> source, UniqueFd in, UniqueFd err, UniqueFd stop) {
    // A processor that stops reading makes our write fail with EPIPE; the
    // signal that comes with it must not end the daemon.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

    std::vector<char> buf(in.valid() ? kChunk : 0);
    std::string_view pending;
    if (in.valid()) set_nonblocking(in.get());
    set_nonblocking(err.get());
    bool stopping = false;
    while (!stopping && (in.valid() || err.valid())) {
      pollfd fds[3];
      nfds_t n = 0;
      const int i_stop = static_cast<int>(n);
      fds[n++] = {stop.get(), POLLIN, 0};
      const int i_in = in.valid() ? static_cast<int>(n) : -1;
      if (in.valid()) fds[n++] = {in.get(), POLLOUT, 0};
      const int i_err = err.valid() ? static_cast<int>(n) : -1;
      if (err.valid()) fds[n++] = {err.get(), POLLIN, 0};
      if (::poll(fds, n, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[i_stop].revents != 0) stopping = true;
      if (i_in >= 0 && fds[i_in].revents != 0 && !stopping) {
        if (pending.empty()) {
          auto got = source->read(buf.data(), buf.size());
          if (!got.ok()) {
            feed_error_ = got.status();
            in.reset();
          } else if (*got == 0) {
            in.reset();  // end of the layer: the processor sees EOF
          } else {
            pending = std::string_view(buf.data(), *got);
          }
        }
        if (!pending.empty()) {
          const ssize_t w = ::write(in.get(), pending.data(), pending.size());
          if (w > 0) {
            pending.remove_prefix(static_cast<size_t>(w));
          } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            if (errno == EPIPE) {
              const timespec zero{0, 0};
              (void)::sigtimedwait(&pipe_signal, nullptr, &zero);
            }
            in.reset();  // it stopped reading: its exit status tells why
          }
        }
      }
      if (i_err >= 0 && fds[i_err].revents != 0) keep_stderr(err);
    }
    keep_stderr(err);
  }

  std::string id_;
  std::string media_type_;
  pid_t pid_;
  UniqueFd pidfd_;
  UniqueFd stdout_;
  UniqueFd stop_;  // closed to stop the helper
  std::thread helper_;
  bool reaped_ = false;
  bool killed_ = false;
  int status_ = 0;
  // Written by the helper, read after it is joined.
  std::string stderr_;
  Status feed_error_;
};

StreamProcessors& StreamProcessors::global() {
  static StreamProcessors* processors = new StreamProcessors();  // never destroyed: used until exit
  return *processors;
}

Status StreamProcessors::add(StreamProcessorSpec spec) {
  const std::string where = "stream_processors." + spec.id;
  if (spec.id.empty()) return errdefs::InvalidArgument("stream processor: empty id");
  if (spec.path.empty()) return errdefs::InvalidArgument(where + ".path: required");
  if (spec.returns.empty()) return errdefs::InvalidArgument(where + ".returns: required");
  if (spec.accepts.empty()) return errdefs::InvalidArgument(where + ".accepts: required");
  std::lock_guard lock(mu_);
  specs_.push_back(std::move(spec));
  return Status::Ok();
}

void StreamProcessors::clear() {
  std::lock_guard lock(mu_);
  specs_.clear();
}

std::optional<StreamProcessorSpec> StreamProcessors::find(std::string_view media_type) const {
  std::lock_guard lock(mu_);
  for (const auto& spec : specs_) {
    if (std::find(spec.accepts.begin(), spec.accepts.end(), media_type) != spec.accepts.end()) return spec;
  }
  return std::nullopt;
}

StatusOr<std::unique_ptr<LayerStream>> LayerStream::open(std::unique_ptr<archive::Reader> blob,
                                                         std::string_view media_type,
                                                         const StreamProcessors& processors,
                                                         const std::map<std::string, std::string>& payloads) {
  auto stream = std::unique_ptr<LayerStream>(new LayerStream());
  std::string type(media_type);
  UniqueFd previous_out;
  // As containerd: configured processors come before the built-in
  // decompressors, and the chain ends at the plain tar type.
  for (;;) {
    if (!stream->stages_.empty() && type == kMediaTypeLayer) break;
    auto spec = processors.find(type);
    if (!spec) break;
    if (stream->stages_.size() == kMaxStreamProcessors) {
      return errdefs::InvalidArgument("layer media type " + std::string(media_type) + ": more than " +
                                      std::to_string(kMaxStreamProcessors) + " stream processors in a chain");
    }
    auto payload = payloads.find(spec->id);
    auto stage = ProcessorStage::start(*spec, type, stream->stages_.empty() ? std::move(blob) : nullptr,
                                       std::move(previous_out),
                                       payload == payloads.end() ? nullptr : &payload->second);
    if (!stage.ok()) return stage.status().with_context("stream processor \"" + spec->id + "\"");
    log::debug("started stream processor",
               {{"id", spec->id}, {"mediatype", type}, {"returns", spec->returns}});
    previous_out = (*stage)->take_stdout();
    stream->stages_.push_back(std::move(*stage));
    type = spec->returns;
  }
  auto compression = archive::compression_of(type);
  if (!compression.ok()) {
    if (stream->stages_.empty()) return compression.status();
    return compression.status().with_context("stream processor \"" + stream->stages_.back()->id() +
                                             "\" returns");
  }
  std::unique_ptr<archive::Reader> source =
      stream->stages_.empty() ? std::move(blob) : std::make_unique<FdReader>(std::move(previous_out));
  stream->tar_ = archive::decompress(std::move(source), *compression);
  return stream;
}

LayerStream::~LayerStream() {
  // Abandoned (or already closed): nothing is read any more, so stop everything.
  tar_.reset();
  for (auto& stage : stages_) stage->kill();
  stages_.clear();  // each reaps its child and joins its helper
}

StatusOr<size_t> LayerStream::read(char* buf, size_t n) {
  if (!tar_) return errdefs::FailedPrecondition("layer stream is closed");
  return tar_->read(buf, n);
}

std::vector<std::string> LayerStream::processor_ids() const {
  std::vector<std::string> ids;
  for (const auto& stage : stages_) ids.push_back(stage->id());
  return ids;
}

Status LayerStream::close(Status consumed) {
  if (closed_) return errdefs::FailedPrecondition("layer stream closed twice");
  closed_ = true;
  if (consumed.ok() && tar_) {
    // The consumer stops at the tar's end; a processor may still be writing padding.
    std::vector<char> rest(64 << 10);
    for (;;) {
      auto got = tar_->read(rest.data(), rest.size());
      if (!got.ok()) consumed = got.status();
      if (!got.ok() || *got == 0) break;
    }
  }
  if (consumed.ok()) {
    tar_.reset();
    for (auto& stage : stages_) {
      if (!stage->wait_for_exit(kExitTimeout)) {
        stage->kill();
        stage->reap(true);
        stage->stop_helper();
        return errdefs::DeadlineExceeded("stream processor \"" + stage->id() +
                                         "\" did not exit after its output ended");
      }
    }
    for (auto& stage : stages_) stage->stop_helper();
    for (auto& stage : stages_) {
      if (auto failed = stage->failure()) return *failed;
    }
    return Status::Ok();
  }

  // Those that ended their output before the consumer gave up did so on their
  // own; what happens after we close their stdout may be our doing.
  std::vector<bool> ended_alone;
  const auto settle_until = std::chrono::steady_clock::now() + kSettleTime;
  for (auto& stage : stages_) {
    const auto left = settle_until - std::chrono::steady_clock::now();
    ended_alone.push_back(stage->wait_for_exit(std::max(left, std::chrono::steady_clock::duration::zero())));
  }
  tar_.reset();
  for (auto& stage : stages_) {
    if (!stage->wait_for_exit(kStopGrace)) {
      stage->kill();
      stage->reap(true);
    }
  }
  for (auto& stage : stages_) stage->stop_helper();
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (auto failed = stages_[i]->failure(); failed && ended_alone[i]) return *failed;
  }
  if (stages_.empty()) return consumed;
  std::string context;
  for (const auto& stage : stages_) {
    context += (context.empty() ? "" : ", ") + ("\"" + stage->id() + "\" (" + stage->describe() + ")");
  }
  return consumed.with_context("output of stream processor " + context);
}

}  // namespace ctrd::diff
