// The foundation as a user sees it: ctrd starts on defaults, `ctr version` and
// `ctr plugins ls` work, config mistakes are reported clearly, and shutdown is clean.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include "harness.h"

namespace ctrd::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

namespace introspection = containerd::services::introspection::v1;

std::string uuid_of(const std::string& version_output) {
  std::smatch m;
  std::regex re("UUID:\\s*([0-9a-f-]{36})");
  return std::regex_search(version_output, m, re) ? m[1].str() : "";
}

TEST(Server, CtrVersionShowsServerVersionRevisionAndStableUuid) {
  Daemon d;
  auto r = d.ctr({"version"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("Server:"));
  EXPECT_THAT(r.out, HasSubstr("Revision:"));
  const std::string uuid = uuid_of(r.out);
  ASSERT_FALSE(uuid.empty()) << r.out;

  ASSERT_EQ(d.stop(), 0) << d.log();
  d.start();
  ASSERT_TRUE(d.wait_ready()) << d.log();
  auto again = d.ctr({"version"});
  ASSERT_EQ(again.exit_code, 0) << again.all();
  EXPECT_EQ(uuid_of(again.out), uuid) << "the UUID must survive a restart";
}

TEST(Server, PluginsLsListsEveryPluginWithStatus) {
  Daemon d;
  auto r = d.ctr({"plugins", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("TYPE"));
  EXPECT_THAT(r.out, HasSubstr("PLATFORMS"));
  EXPECT_THAT(r.out, HasSubstr("STATUS"));
  for (const char* line :
       {"io.containerd.event.v1\\s+exchange\\s+-\\s+ok", "io.containerd.content.v1\\s+content\\s+-\\s+ok",
        "io.containerd.metadata.v1\\s+lmdb\\s+-\\s+ok",
        "io.containerd.service.v1\\s+content-service\\s+-\\s+ok",
        "io.containerd.grpc.v1\\s+namespaces\\s+-\\s+ok", "io.containerd.grpc.v1\\s+leases\\s+-\\s+ok",
        "io.containerd.grpc.v1\\s+events\\s+-\\s+ok", "io.containerd.grpc.v1\\s+content\\s+-\\s+ok",
        "io.containerd.service.v1\\s+introspection-service\\s+-\\s+ok",
        "io.containerd.grpc.v1\\s+introspection\\s+-\\s+ok", "io.containerd.grpc.v1\\s+version\\s+-\\s+ok",
        "io.containerd.grpc.v1\\s+healthcheck\\s+-\\s+ok"}) {
    EXPECT_TRUE(std::regex_search(r.out, std::regex(line))) << line << "\n" << r.out;
  }
}

TEST(Server, PluginsLsFiltersByType) {
  Daemon d;
  auto r = d.ctr({"plugins", "ls", "type==io.containerd.grpc.v1"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("io.containerd.grpc.v1"));
  EXPECT_THAT(r.out, Not(HasSubstr("io.containerd.service.v1")));

  auto both = d.ctr({"plugins", "ls", "id==version", "id==healthcheck"});
  ASSERT_EQ(both.exit_code, 0) << both.all();
  EXPECT_THAT(both.out, HasSubstr("version"));
  EXPECT_THAT(both.out, HasSubstr("healthcheck"));
  EXPECT_THAT(both.out, Not(HasSubstr("introspection")));
}

TEST(Server, InvalidPluginFilterIsInvalidArgument) {
  Daemon d;
  auto stub = introspection::Introspection::NewStub(d.channel());
  grpc::ClientContext ctx;
  introspection::PluginsRequest req;
  req.add_filters("type==\"unterminated");
  introspection::PluginsResponse resp;
  auto s = stub->Plugins(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

TEST(Server, MissingRequirementShowsAsErrorWithReason) {
  // The metadata plugin requires a content plugin; with it disabled the
  // metadata plugin cannot start, and introspection says why.
  Daemon d({.config = "version = 2\ndisabled_plugins = [\"io.containerd.content.v1.content\"]\n"});
  auto ls = d.ctr({"plugins", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.all();
  EXPECT_TRUE(std::regex_search(ls.out, std::regex("io.containerd.metadata.v1\\s+lmdb\\s+-\\s+error")))
      << ls.out;
  EXPECT_TRUE(std::regex_search(ls.out, std::regex("io.containerd.grpc.v1\\s+version\\s+-\\s+ok"))) << ls.out;
  EXPECT_THAT(ls.out, Not(HasSubstr("io.containerd.content.v1")));

  auto detailed = d.ctr({"plugins", "ls", "-d", "id==lmdb"});
  ASSERT_EQ(detailed.exit_code, 0) << detailed.all();
  EXPECT_THAT(detailed.out, HasSubstr("requires io.containerd.content.v1, which no enabled plugin provides"));
  EXPECT_THAT(detailed.out, HasSubstr("io.containerd.content.v1"));  // listed under Requires
}

TEST(Server, PluginsLsDetailedShowsExports) {
  Daemon d;
  auto r = d.ctr({"plugins", "ls", "-d", "type==io.containerd.content.v1"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("root"));
  EXPECT_THAT(r.out, HasSubstr(d.root() + "/io.containerd.content.v1.content"));
}

TEST(Server, DisabledPluginIsAbsent) {
  Daemon d({.config = "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.healthcheck\"]\n"});
  auto r = d.ctr({"plugins", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, Not(HasSubstr("healthcheck")));
  EXPECT_THAT(r.out, HasSubstr("version"));
}

TEST(Server, DisabledPluginByIdInVersion1Config) {
  Daemon d({.config = "version = 1\ndisabled_plugins = [\"healthcheck\"]\n"});
  auto r = d.ctr({"plugins", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, Not(HasSubstr("healthcheck")));
}

TEST(Server, RequiredPluginThatFailsStopsStartupNamingIt) {
  Daemon d({.config = "version = 2\n"
                      "disabled_plugins = [\"io.containerd.content.v1.content\"]\n"
                      "required_plugins = [\"io.containerd.metadata.v1.lmdb\"]\n",
            .wait_ready = false});
  auto code = d.process().wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "ctrd should exit when a required plugin fails";
  EXPECT_NE(*code, 0);
  EXPECT_THAT(d.log(), HasSubstr("required plugins did not initialize: io.containerd.metadata.v1.lmdb"));
  EXPECT_THAT(d.log(), HasSubstr("io.containerd.content.v1"));
}

TEST(Server, MalformedTomlFailsWithFileLineColumn) {
  Daemon d({.config = "version = 2\n[grpc\naddress = 1\n", .wait_ready = false});
  auto code = d.process().wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(std::regex_search(d.log(), std::regex("config\\.toml:2:\\d+"))) << d.log();
}

TEST(Server, WrongTypeAndBadDurationNameTheKey) {
  {
    Daemon d({.config = "version = 2\n[grpc]\nuid = \"root\"\n", .wait_ready = false});
    ASSERT_NE(d.process().wait(std::chrono::seconds(30)).value_or(0), 0);
    EXPECT_THAT(d.log(), HasSubstr("grpc.uid"));
  }
  {
    Daemon d({.config = "version = 2\n[timeouts]\n\"io.containerd.timeout.shim.cleanup\" = \"5 parsecs\"\n",
              .wait_ready = false});
    ASSERT_NE(d.process().wait(std::chrono::seconds(30)).value_or(0), 0);
    EXPECT_THAT(d.log(), HasSubstr("timeouts.\\\"io.containerd.timeout.shim.cleanup\\\""));
  }
}

TEST(Server, UnknownKeyIsAWarningNamingIt) {
  Daemon d({.config = "version = 2\nbogus_key = 1\n[grpc]\nmystery = true\n"});
  EXPECT_THAT(d.log(), HasSubstr("bogus_key"));
  EXPECT_THAT(d.log(), HasSubstr("grpc.mystery"));
  EXPECT_THAT(d.log(), HasSubstr("level=warning"));
}

TEST(Server, ImportsAreMergedInOrder) {
  TempDir extra;
  std::ofstream(extra.path() / "a.toml") << "[grpc]\nmax_recv_message_size = 1234\n";
  Daemon d({.config = "version = 2\nimports = [\"" + (extra.path() / "*.toml").string() +
                      "\"]\ndisabled_plugins = [\"io.containerd.grpc.v1.healthcheck\"]\n"});
  auto r = run({ctrd_binary(), "--config", (d.dir() / "config.toml").string(), "config", "dump"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("max_recv_message_size = 1234"));
  EXPECT_THAT(r.out, HasSubstr("io.containerd.grpc.v1.healthcheck"));
}

TEST(Server, LogsAreLogfmt) {
  Daemon d({.extra_args = {"--log-level", "debug"}});
  EXPECT_TRUE(std::regex_search(
      d.log(),
      std::regex("time=\"[0-9T:.-]+Z\" level=info msg=\"loading plugin \\\\\"io\\.containerd\\.grpc\\.v1\\."
                 "version\\\\\"\\.\\.\\.\" type=io\\.containerd\\.grpc\\.v1")))
      << d.log();
}

TEST(Server, SecondDaemonOnLiveSocketIsRefused) {
  Daemon first;
  Process second({ctrd_binary(), "--root", first.root() + "2", "--state", first.state() + "2", "--address",
                  first.address()},
                 (first.dir() / "second.log").string());
  auto code = second.wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  std::ifstream in(first.dir() / "second.log");
  std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(log, HasSubstr("already serving"));
  EXPECT_EQ(first.ctr({"version"}).exit_code, 0) << "the first daemon must be unaffected";
}

TEST(Server, StaleSocketFileIsReplaced) {
  Daemon d({.start = false});
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", d.address().c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);  // bound, never listened: a stale socket file
  }
  d.start();
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_EQ(d.ctr({"version"}).exit_code, 0);
}

TEST(Server, SigtermStopsCleanlyAndRemovesSockets) {
  Daemon d;
  struct stat st {};
  ASSERT_EQ(::stat(d.address().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_EQ(::stat((d.address() + ".ttrpc").c_str(), &st), 0) << "the ttRPC socket is created";
  auto code = d.stop();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << d.log();
  EXPECT_NE(::stat(d.address().c_str(), &st), 0);
  EXPECT_NE(::stat((d.address() + ".ttrpc").c_str(), &st), 0);
  EXPECT_THAT(d.log(), HasSubstr("stopped"));
}

// The daemon's thread count, from /proc.
int thread_count(pid_t pid) {
  std::istringstream status(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// 500 synchronous image deletes at once, each blocking until a collection has
// run: all complete, on no more threads than [grpc] blocking_threads allows.
TEST(Server, FiveHundredConcurrentBlockingCallsCompleteOnABoundedPool) {
  constexpr int kCalls = 500;
  constexpr int kBound = 4;
  Daemon d({.config = "version = 2\n[grpc]\nblocking_threads = " + std::to_string(kBound) + "\n"});
  namespace images = containerd::services::images::v1;
  auto stub = images::Images::NewStub(d.channel());
  for (int i = 0; i < kCalls; ++i) {
    images::CreateImageRequest req;
    req.mutable_image()->set_name("example.com/many:" + std::to_string(i));
    req.mutable_image()->mutable_target()->set_media_type("application/vnd.oci.image.manifest.v1+json");
    req.mutable_image()->mutable_target()->set_digest("sha256:" + std::string(64, 'a'));
    req.mutable_image()->mutable_target()->set_size(1);
    images::CreateImageResponse resp;
    auto ctx = context_for("many");
    ASSERT_TRUE(stub->Create(ctx.get(), req, &resp).ok());
  }
  const int idle = thread_count(d.process().pid());
  ASSERT_GT(idle, 0);

  grpc::CompletionQueue cq;
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    google::protobuf::Empty resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<google::protobuf::Empty>> reader;
  };
  std::vector<Call> calls(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    images::DeleteImageRequest req;
    req.set_name("example.com/many:" + std::to_string(i));
    req.set_sync(true);
    calls[i].ctx = context_for("many");
    calls[i].ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    calls[i].reader = stub->AsyncDelete(calls[i].ctx.get(), req, &cq);
    calls[i].reader->Finish(&calls[i].resp, &calls[i].status, &calls[i]);
  }
  int done = 0;
  int most_threads = idle;
  while (done < kCalls) {
    void* tag = nullptr;
    bool ok = false;
    auto next = cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(20));
    most_threads = std::max(most_threads, thread_count(d.process().pid()));
    if (next == grpc::CompletionQueue::SHUTDOWN) break;
    if (next == grpc::CompletionQueue::GOT_EVENT) ++done;
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  ASSERT_EQ(done, kCalls);
  int failed = 0;
  for (const auto& c : calls) failed += c.status.ok() ? 0 : 1;
  EXPECT_EQ(failed, 0) << calls.front().status.error_message();
  std::cout << "daemon threads: " << idle << " idle, at most " << most_threads << " during " << kCalls
            << " blocking calls (bound " << kBound << ")\n";
  // gRPC's own callback threads may grow a little under load too; one thread
  // per call would be hundreds.
  EXPECT_LE(most_threads, idle + kBound + 8);
}

// A datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
  }
  bool bound() const { return bound_; }
  // The next message, or "" after `timeout`.
  std::string receive(std::chrono::milliseconds timeout) {
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[256];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(Server, TellsTheServiceManagerWhenReadyAndWhenStopping) {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify.sock");
  ASSERT_TRUE(notify.bound());
  Daemon d(DaemonOptions{.start = true, .wait_ready = false});
  EXPECT_EQ(notify.receive(std::chrono::seconds(30)), "READY=1") << d.log();
  {
    // Ready means serving: the very next call is answered.
    auto stub = containerd::services::version::v1::Version::NewStub(d.channel());
    containerd::services::version::v1::VersionResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ASSERT_TRUE(stub->Version(&ctx, google::protobuf::Empty(), &resp).ok());
  }
  EXPECT_EQ(notify.receive(std::chrono::milliseconds(0)), "") << "READY=1 only once";

  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(notify.receive(std::chrono::seconds(30)), "STOPPING=1");
}

TEST(Server, HealthServiceReportsServing) {
  Daemon d;
  grpc::ClientContext ctx;
  // grpc.health.v1.Health/Check with an empty request (service ""): raw bytes, no proto needed.
  grpc::GenericStub stub(d.channel());
  grpc::ByteBuffer req, resp;
  grpc::Slice empty("", 0);
  req = grpc::ByteBuffer(&empty, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    std::lock_guard l(mu);
    status = s;
    done = true;
    cv.notify_all();
  });
  std::unique_lock l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return done; }));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2)) << "status: SERVING";
}

int free_loopback_port() {
  // Bound to port 0 and released: free at that moment on loopback.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

grpc::Status version_over(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = containerd::services::version::v1::Version::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  containerd::services::version::v1::VersionResponse resp;
  return stub->Version(&ctx, google::protobuf::Empty(), &resp);
}

TEST(Server, ServesOnTcpWhenConfigured) {
  const std::string tcp = "127.0.0.1:" + std::to_string(free_loopback_port());
  Daemon d({.config = "version = 2\n[grpc]\ntcp_address = \"" + tcp + "\"\n"});
  auto s = version_over(grpc::CreateChannel(tcp, grpc::InsecureChannelCredentials()));
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(d.log(), AllOf(HasSubstr("level=warning"), HasSubstr("gRPC on TCP without TLS"),
                             HasSubstr("address=" + tcp)));
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
struct Pki {
  TempDir dir;
  std::filesystem::path path(const char* name) const { return dir.path() / name; }
  bool make() {
    const std::string d = dir.path().string();
    auto ok = [](const RunResult& r) { return r.exit_code == 0; };
    auto req = [&](const std::string& name, const std::string& subject) {
      return ok(run({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                     d + "/" + name + ".key", "-out", d + "/" + name + ".csr", "-subj", subject})) &&
             ok(run({"/usr/bin/openssl", "x509", "-req", "-in", d + "/" + name + ".csr", "-CA", d + "/ca.crt",
                     "-CAkey", d + "/ca.key", "-CAcreateserial", "-days", "1", "-out",
                     d + "/" + name + ".crt", "-extfile", d + "/" + name + ".ext"}));
    };
    std::ofstream(path("server.ext")) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::ofstream(path("client.ext")) << "extendedKeyUsage=clientAuth\n";
    return ok(run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                   d + "/ca.key", "-out", d + "/ca.crt", "-days", "1", "-subj", "/CN=ctrd-test-ca"})) &&
           req("server", "/CN=127.0.0.1") && req("client", "/CN=client");
  }
};

TEST(Server, TcpWithTlsAndMutualTls) {
  if (!std::filesystem::exists("/usr/bin/openssl")) GTEST_SKIP() << "openssl not installed";
  Pki pki;
  ASSERT_TRUE(pki.make());
  grpc::SslCredentialsOptions trust;
  trust.pem_root_certs = read_text(pki.path("ca.crt"));
  {
    const std::string tcp = "127.0.0.1:" + std::to_string(free_loopback_port());
    Daemon d({.config = "version = 2\n[grpc]\ntcp_address = \"" + tcp + "\"\ntcp_tls_cert = \"" +
                        pki.path("server.crt").string() + "\"\ntcp_tls_key = \"" +
                        pki.path("server.key").string() + "\"\n"});
    auto s = version_over(grpc::CreateChannel(tcp, grpc::SslCredentials(trust)));
    EXPECT_TRUE(s.ok()) << "TLS: " << s.error_message();
    EXPECT_FALSE(version_over(grpc::CreateChannel(tcp, grpc::InsecureChannelCredentials())).ok())
        << "plaintext must not be accepted on a TLS port";
  }
  {
    const std::string tcp = "127.0.0.1:" + std::to_string(free_loopback_port());
    Daemon d({.config = "version = 2\n[grpc]\ntcp_address = \"" + tcp + "\"\ntcp_tls_cert = \"" +
                        pki.path("server.crt").string() + "\"\ntcp_tls_key = \"" +
                        pki.path("server.key").string() + "\"\ntcp_tls_ca = \"" +
                        pki.path("ca.crt").string() + "\"\n"});
    EXPECT_FALSE(version_over(grpc::CreateChannel(tcp, grpc::SslCredentials(trust))).ok())
        << "mutual TLS: a client without a certificate is refused";
    grpc::SslCredentialsOptions with_cert = trust;
    with_cert.pem_private_key = read_text(pki.path("client.key"));
    with_cert.pem_cert_chain = read_text(pki.path("client.crt"));
    auto s = version_over(grpc::CreateChannel(tcp, grpc::SslCredentials(with_cert)));
    EXPECT_TRUE(s.ok()) << "mutual TLS with a client certificate: " << s.error_message();
  }
}

TEST(Cli, ConfigDefaultPrintsServerAndPluginSections) {
  auto r = run({ctrd_binary(), "config", "default"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("root = \"/var/lib/ctrd\""));
  EXPECT_THAT(r.out, HasSubstr("state = \"/run/ctrd\""));
  EXPECT_THAT(r.out, HasSubstr("address = \"/run/ctrd/ctrd.sock\""));
  EXPECT_THAT(r.out, HasSubstr("\"io.containerd.timeout.shim.cleanup\" = \"5s\""));
  EXPECT_THAT(r.out, HasSubstr("[grpc]"));
  for (const char* uri :
       {"io.containerd.content.v1.content", "io.containerd.metadata.v1.lmdb", "io.containerd.grpc.v1.version",
        "io.containerd.service.v1.introspection-service"}) {
    EXPECT_THAT(r.out, HasSubstr(std::string("[plugins.\"") + uri + "\"]")) << uri;
  }
}

TEST(Cli, VersionAndUsage) {
  auto r = run({ctrd_binary(), "--version"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("ctrd"));
  auto bad = run({ctrd_binary(), "--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--no-such-flag"));
  // One clear line, not the whole usage.
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  auto help = run({ctrd_binary(), "--help"});
  ASSERT_EQ(help.exit_code, 0);
  for (const char* item : {"--config", "--root", "--state", "--address", "--log-level", "--version", "--help",
                           "config default", "config dump", "config migrate", "publish"}) {
    EXPECT_THAT(help.out, HasSubstr(item)) << item;
  }
  auto unknown = run({ctrd_binary(), "frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("frobnicate"));
}

TEST(Cli, PluginsGraphDrawsTheConfigsGraph) {
  auto text = run({ctrd_binary(), "plugins", "graph"});
  ASSERT_EQ(text.exit_code, 0) << text.all();
  EXPECT_THAT(
      text.out,
      HasSubstr("io.containerd.metadata.v1.lmdb  [base]  requires: io.containerd.content.v1.content"));
  EXPECT_THAT(text.out, HasSubstr("io.containerd.grpc.v1.tasks  [api]"));
  EXPECT_THAT(text.out, Not(HasSubstr("UNSATISFIED")));

  // Disabling the metadata store leaves what needs it unsatisfied, and says why.
  TempDir dir;
  const auto config = dir.path() / "config.toml";
  std::ofstream(config) << "version = 2\ndisabled_plugins = [\"io.containerd.metadata.v1.lmdb\"]\n";
  auto broken = run({ctrd_binary(), "--config", config.string(), "plugins", "graph"});
  ASSERT_EQ(broken.exit_code, 0) << broken.all();
  EXPECT_THAT(broken.out, HasSubstr("io.containerd.metadata.v1.lmdb  [base]  DISABLED"));
  EXPECT_THAT(broken.out,
              HasSubstr("io.containerd.gc.v1.scheduler  [base]  MISSING: io.containerd.metadata.v1"));

  if (!std::filesystem::exists("/usr/bin/dot")) GTEST_SKIP() << "graphviz not installed";
  const auto svg = dir.path() / "graph.svg";
  auto rendered = run({"/bin/sh", "-c",
                       ctrd_binary() + " --config " + config.string() +
                           " plugins graph --format dot | /usr/bin/dot -Tsvg -o " + svg.string()});
  ASSERT_EQ(rendered.exit_code, 0) << rendered.all();
  std::ifstream in(svg);
  std::string body((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(body, HasSubstr("<svg"));
  EXPECT_THAT(body, HasSubstr("missing: io.containerd.metadata.v1"));
}

TEST(Cli, ConfigMigrateRewritesVersion1AsVersion2) {
  TempDir dir;
  const auto path = dir.path() / "v1.toml";
  std::ofstream(path) << "version = 1\nroot = \"/srv/ctrd\"\n"
                         "[plugins.overlayfs]\n  upperdir_label = true\n"
                         "[plugins.scheduler]\n  pause_threshold = 0.05\n";
  auto r = run({ctrd_binary(), "--config", path.string(), "config", "migrate"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_THAT(r.out, HasSubstr("version = 2"));
  EXPECT_THAT(r.out, HasSubstr("root = \"/srv/ctrd\""));
  EXPECT_THAT(r.out, HasSubstr("[plugins.\"io.containerd.snapshotter.v1.overlayfs\"]"));
  EXPECT_THAT(r.out, HasSubstr("[plugins.\"io.containerd.gc.v1.scheduler\"]\npause_threshold = 0.05"));
  EXPECT_THAT(r.out, Not(HasSubstr("[plugins.overlayfs]")));

  // What it prints is a version 2 config the daemon reads the same way.
  const auto migrated = dir.path() / "v2.toml";
  std::ofstream(migrated) << r.out;
  auto dump = run({ctrd_binary(), "--config", migrated.string(), "config", "dump"});
  ASSERT_EQ(dump.exit_code, 0) << dump.all();
  EXPECT_THAT(dump.out, HasSubstr("upperdir_label = true"));

  auto missing = run({ctrd_binary(), "--config", (dir.path() / "none.toml").string(), "config", "migrate"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("none.toml"));
}

}  // namespace
}  // namespace ctrd::testing
