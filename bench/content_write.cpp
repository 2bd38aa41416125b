// Content ingest throughput and daemon CPU, ctrd against containerd, side by side.
//
// Each round starts ctrd then containerd (A B A B ...), each on a fresh
// temporary root (so every round writes a new blob), and writes one blob over
// the content service's Write stream the way `ctr content ingest` does: STAT
// with ref, total and expected digest, then 1 MiB WRITEs each waiting for its
// response (ctr's proxy writer is synchronous per message), then COMMIT.
// Measures the wall-clock throughput from the STAT to the commit's response and
// the CPU time the daemon spent on the ingest. Prints medians and ratios.
//
// Each daemon idles --settle-ms before its ingest, so its start-up work is done
// and both start from the same memory state: on a VM that hands free guest
// pages back to the host (free page reporting), page cache built from pages
// freed a moment ago is several times cheaper to fill than from pages the host
// has taken back, and without the pause that would depend on the A B order.
// Usage:
//   bench_content_write [--rounds N] [--size-mib MIB] [--settle-ms MS]
//                       [--only ctrd|containerd] [--ctrd PATH] [--containerd PATH]
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/grpcpp.h>

#include "daemon.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace bench = ctrd::bench;
using bench::median;
namespace fs = std::filesystem;
namespace api = containerd::services::content::v1;
using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = size_t{1} << 20;  // what ctr's copy buffer hands the writer
constexpr int kMaxMessage = 32 << 20;       // well above one chunk plus framing
constexpr std::string_view kNamespace = "bench";

struct Blob {
  std::string data;
  std::string digest;  // "sha256:<hex>"
};

// Deterministic and incompressible enough that no layer can shortcut it.
Blob make_blob(size_t size) {
  Blob b;
  b.data.resize(size);
  uint64_t state = 0x6a09e667f3bcc908ULL;
  for (size_t i = 0; i < size; i += sizeof(uint64_t)) {
    // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    std::memcpy(b.data.data() + i, &z, std::min(sizeof z, size - i));
  }
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(b.data.data(), b.data.size(), sum, &len, EVP_sha256(), nullptr) != 1) std::abort();
  static constexpr char kHex[] = "0123456789abcdef";
  b.digest = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    b.digest += kHex[sum[i] >> 4];
    b.digest += kHex[sum[i] & 0xf];
  }
  return b;
}

struct Sample {
  double mib_per_s = 0;
  double cpu_s = 0;
  double user_s = 0;
  double sys_s = 0;
  double wall_s = 0;
  double commit_ms = 0;  // the COMMIT round trip alone: the daemon's fsync and rename
};

// Errors come back as a message; the Daemon's destructor stops it either way.
std::optional<Sample> ingest(bench::Daemon& d, const Blob& blob, const std::string& ref, std::string* error) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(kMaxMessage);
  args.SetMaxReceiveMessageSize(kMaxMessage);
  auto channel = grpc::CreateCustomChannel(d.address(), grpc::InsecureChannelCredentials(), args);
  auto stub = api::Content::NewStub(channel);
  const int64_t size = static_cast<int64_t>(blob.data.size());

  grpc::ClientContext ctx;
  // Generous even for the slowest daemon; it only keeps a wedged stream from hanging the run.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  ctx.AddMetadata("containerd-namespace", std::string(kNamespace));
  auto stream = stub->Write(&ctx);
  api::WriteContentRequest req;
  api::WriteContentResponse resp;
  // Cancelled first: Finish would otherwise wait for a server that may never end the stream.
  auto fail = [&](const std::string& what) -> std::optional<Sample> {
    ctx.TryCancel();
    grpc::Status st = stream->Finish();
    *error = what + (st.ok() ? "" : " (" + std::to_string(st.error_code()) + ": " + st.error_message() + ")");
    return std::nullopt;
  };

  auto cpu_before = bench::cpu_seconds(d.pid());
  if (!cpu_before) return fail("cannot read /proc/<pid>/stat");
  const auto start = Clock::now();

  req.set_action(api::STAT);
  req.set_ref(ref);
  req.set_total(size);
  req.set_expected(blob.digest);
  if (!stream->Write(req) || !stream->Read(&resp)) return fail("stat");
  if (resp.offset() != 0) return fail("stat: fresh ref at offset " + std::to_string(resp.offset()));

  req.Clear();
  req.set_action(api::WRITE);
  int64_t offset = 0;
  while (offset < size) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(size - offset, kChunk));
    req.set_offset(offset);
    req.mutable_data()->assign(blob.data.data() + offset, n);
    if (!stream->Write(req) || !stream->Read(&resp)) return fail("write @" + std::to_string(offset));
    offset += static_cast<int64_t>(n);
    if (resp.offset() != offset) {
      return fail("write: daemon at offset " + std::to_string(resp.offset()) + ", sent " +
                  std::to_string(offset));
    }
  }

  req.Clear();
  req.set_action(api::COMMIT);
  const auto commit_start = Clock::now();
  req.set_total(size);
  req.set_offset(size);
  req.set_expected(blob.digest);
  if (!stream->Write(req) || !stream->Read(&resp)) return fail("commit");
  const auto end = Clock::now();
  if (resp.action() != api::COMMIT || resp.offset() != size) return fail("commit: unexpected response");
  if (!resp.digest().empty() && resp.digest() != blob.digest) return fail("commit: digest " + resp.digest());

  stream->WritesDone();
  // containerd sends the commit response a second time as the stream ends;
  // Finish waits for unread messages, so drain them.
  while (stream->Read(&resp)) {
  }
  if (grpc::Status st = stream->Finish(); !st.ok()) {
    *error = "finish: " + st.error_message();
    return std::nullopt;
  }
  auto cpu_after = bench::cpu_seconds(d.pid());
  if (!cpu_after) {
    *error = "cannot read /proc/<pid>/stat";
    return std::nullopt;
  }

  Sample s;
  s.wall_s = std::chrono::duration<double>(end - start).count();
  s.commit_ms = std::chrono::duration<double, std::milli>(end - commit_start).count();
  s.mib_per_s = static_cast<double>(size) / (1 << 20) / s.wall_s;
  s.user_s = cpu_after->user - cpu_before->user;
  s.sys_s = cpu_after->sys - cpu_before->sys;
  s.cpu_s = s.user_s + s.sys_s;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  size_t size_mib = 512;
  int settle_ms = 3000;
  std::string only;
  std::string ctrd = CTRD_BINARY_PATH;
  std::string containerd = "/usr/bin/containerd";
  if (!bench::Flags()
           .add("--rounds", &rounds)
           .add("--size-mib", &size_mib)
           .add("--settle-ms", &settle_ms)
           .add("--only", &only)
           .add("--ctrd", &ctrd)
           .add("--containerd", &containerd)
           .parse(argc, argv))
    return 2;
  if (rounds < 1 || size_mib < 1) {
    std::cerr << "--rounds and --size-mib take a positive number\n";
    return 2;
  }
  bench::stop_current_daemon_on_signals();

  std::vector<bench::Target> targets;
  if (only.empty() || only == "ctrd") targets.push_back({"ctrd", bench::ctrd_argv, ctrd, ""});
  if (only.empty() || only == "containerd") {
    targets.push_back({"containerd", bench::containerd_argv, containerd,
                       "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"});
  }
  if (targets.empty()) {
    std::cerr << "--only takes ctrd or containerd\n";
    return 2;
  }

  const Blob blob = make_blob(size_mib << 20);
  std::vector<std::vector<double>> rate(targets.size()), cpu(targets.size()), user(targets.size()),
      sys(targets.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t t = 0; t < targets.size(); ++t) {
      bench::Daemon d(targets[t]);
      bench::CurrentDaemon current(d);
      std::string error = d.error();
      std::optional<Sample> s;
      if (error.empty() && d.wait_ready()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
        s = ingest(d, blob, "bench-" + std::to_string(r), &error);
      } else if (error.empty()) {
        error = d.error();
      }
      if (!s) {
        std::cerr << targets[t].name << ": " << error << "\n";
        return 1;
      }
      std::fprintf(
          stderr,
          "round %d %-12s %8.1f MiB/s %6.2f s wall (commit %4.0f ms) %6.2f s CPU (user %.2f, sys %.2f)\n",
          r + 1, targets[t].name.c_str(), s->mib_per_s, s->wall_s, s->commit_ms, s->cpu_s, s->user_s,
          s->sys_s);
      rate[t].push_back(s->mib_per_s);
      cpu[t].push_back(s->cpu_s);
      user[t].push_back(s->user_s);
      sys[t].push_back(s->sys_s);
    }
  }
  std::printf("%-20s %14s %14s %9s %9s   (medians of %d ingests of %zu MiB in 1 MiB writes, A B A B order)\n",
              "daemon", "write (MiB/s)", "daemon CPU (s)", "user (s)", "sys (s)", rounds, size_mib);
  for (size_t t = 0; t < targets.size(); ++t) {
    std::printf("%-20s %14.1f %14.2f %9.2f %9.2f\n", targets[t].name.c_str(), median(rate[t]), median(cpu[t]),
                median(user[t]), median(sys[t]));
  }
  for (size_t t = 1; t < targets.size(); ++t) {
    std::printf("ctrd / %-13s throughput %.3f  CPU %.3f  (user %.3f, sys %.3f)\n", targets[t].name.c_str(),
                median(rate[0]) / median(rate[t]), median(cpu[0]) / median(cpu[t]),
                median(user[0]) / median(user[t]), median(sys[0]) / median(sys[t]));
  }
  return 0;
}
