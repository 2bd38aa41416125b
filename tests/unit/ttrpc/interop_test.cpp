// The C++ client and server against Debian's Go ttrpc (tests/unit/ttrpc/go).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <google/protobuf/wrappers.pb.h>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "ttrpc/ttrpc.h"

extern char** environ;

namespace ctrd::ttrpc {
namespace {

#ifdef CTRD_TTRPC_INTEROP
constexpr const char* kInterop = CTRD_TTRPC_INTEROP;
#else
constexpr const char* kInterop = nullptr;
#endif

using google::protobuf::StringValue;

// The Go program, with its stdout on a pipe; killed (by pid) if still running.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    out_.reset(fds[0]);
    os::UniqueFd write_end(fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return pid_ > 0; }

  // Everything up to a newline or EOF; the timeout only guards against a hang.
  std::string read_line() {
    std::string line;
    char c = 0;
    while (true) {
      pollfd p{.fd = out_.get(), .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 30'000) != 1 || ::read(out_.get(), &c, 1) != 1 || c == '\n') return line;
      line.push_back(c);
    }
  }

  int wait() {
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  os::UniqueFd out_;
};

class GoInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kInterop == nullptr) GTEST_SKIP() << "built without go: no interop program";
    ASSERT_FALSE(dir_.path().empty());
  }
  TempDir dir_;
};

TEST_F(GoInterop, OurClientCallsAGoServer) {
  const std::string socket = dir_.str() + "/go.sock";
  Child go({kInterop, "serve", socket});
  ASSERT_TRUE(go.started());
  ASSERT_EQ(go.read_line(), "ready");

  auto client = Client::connect("unix://" + socket);
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  StringValue request;
  request.set_value("from c++");
  auto echo = (*client)->call<StringValue>("ctrd.test.v1.Test", "Echo", request);
  ASSERT_TRUE(echo.ok()) << echo.status().to_string();
  EXPECT_EQ(echo->value(), "from c++");

  request.set_value("y");
  auto fail = (*client)->call<StringValue>("ctrd.test.v1.Test", "Fail", request);
  EXPECT_EQ(fail.status().code(), errdefs::Code::kNotFound);
  EXPECT_EQ(fail.status().message(), "no such thing: y");

  auto ns = (*client)->call<StringValue>("ctrd.test.v1.Test", "Namespace", StringValue(),
                                         {{std::string(kNamespaceKey), "default"}}, std::chrono::seconds(10));
  ASSERT_TRUE(ns.ok()) << ns.status().to_string();
  EXPECT_EQ(ns->value(), "default|set");
  auto no_deadline = (*client)->call<StringValue>("ctrd.test.v1.Test", "Namespace", StringValue());
  ASSERT_TRUE(no_deadline.ok());
  EXPECT_EQ(no_deadline->value(), "|none");

  auto missing = (*client)->call<StringValue>("ctrd.test.v1.Test", "Nope", StringValue());
  EXPECT_EQ(missing.status().code(), errdefs::Code::kNotImplemented);

  // 5 MiB to a Go server: refused before it is sent; the connection lives on.
  request.set_value(std::string(5 << 20, 'x'));
  EXPECT_EQ((*client)->call<StringValue>("ctrd.test.v1.Test", "Echo", request).status().code(),
            errdefs::Code::kResourceExhausted);
  request.set_value("again");
  EXPECT_EQ((*client)->call<StringValue>("ctrd.test.v1.Test", "Echo", request).value().value(), "again");
}

TEST_F(GoInterop, AGoClientCallsOurServer) {
  const std::string socket = dir_.str() + "/ours.sock";
  Server server;
  ASSERT_TRUE(
      server
          .add_handler("ctrd.test.v1.Test", "Echo",
                       [](const CallContext&, std::string_view req) -> errdefs::StatusOr<std::string> {
                         return std::string(req);
                       })
          .ok());
  ASSERT_TRUE(
      server
          .add_handler("ctrd.test.v1.Test", "Fail",
                       [](const CallContext&, std::string_view req) -> errdefs::StatusOr<std::string> {
                         StringValue v;
                         v.ParseFromString(std::string(req));
                         return errdefs::NotFound("no such thing: " + v.value());
                       })
          .ok());
  ASSERT_TRUE(
      server
          .add_handler("ctrd.test.v1.Test", "Namespace",
                       [](const CallContext& ctx, std::string_view) -> errdefs::StatusOr<std::string> {
                         StringValue v;
                         v.set_value(std::string(metadata_value(ctx.metadata, kNamespaceKey).value_or("")) +
                                     (ctx.deadline ? "|set" : "|none"));
                         return v.SerializeAsString();
                       })
          .ok());
  auto listener = listen_unix(socket);
  ASSERT_TRUE(listener.ok()) << listener.status().to_string();
  ASSERT_TRUE(server.serve(std::move(listener).value()).ok());

  Child go({kInterop, "call", socket});
  ASSERT_TRUE(go.started());
  EXPECT_EQ(go.read_line(), "ok");
  EXPECT_EQ(go.wait(), 0);
}

}  // namespace
}  // namespace ctrd::ttrpc
