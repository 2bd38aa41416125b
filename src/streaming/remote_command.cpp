#include "streaming/remote_command.h"

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

namespace ctrd::streaming {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kStreamCreationTimeout = std::chrono::seconds(30);
// After the exit, output still in flight gets this long to arrive.
constexpr auto kOutputDrainTimeout = std::chrono::seconds(2);

bool has_resize_stream(std::string_view protocol, bool tty) {
  return tty && (protocol == kRemoteCommandV4 || protocol == kRemoteCommandV3);
}

}  // namespace

const std::vector<std::string>& remote_command_protocols() {
  static const std::vector<std::string> protocols{
      std::string(kRemoteCommandV4), std::string(kRemoteCommandV3), std::string(kRemoteCommandV2),
      std::string(kRemoteCommandV1)};
  return protocols;
}

std::string remote_command_status(std::string_view protocol, std::optional<int> exit_code,
                                  const std::string& error) {
  const bool success = exit_code && *exit_code == 0;
  std::string message = error;
  if (exit_code && *exit_code != 0)
    message = "command terminated with non-zero exit code: exit status " + std::to_string(*exit_code);
  if (protocol != kRemoteCommandV4) return success ? "" : message;
  json status{{"metadata", json::object()}, {"status", success ? "Success" : "Failure"}};
  if (!success) {
    status["message"] = message;
    if (exit_code) {
      status["reason"] = "NonZeroExitCode";
      status["details"] = {
          {"causes", json::array({{{"reason", "ExitCode"}, {"message", std::to_string(*exit_code)}}})}};
    } else {
      status["reason"] = "InternalError";
      status["code"] = 500;
    }
  }
  return status.dump();
}

errdefs::Status serve_remote_command(
    SpdySession& session, std::string_view protocol, const RemoteCommandOptions& options,
    const std::function<errdefs::StatusOr<std::unique_ptr<StreamProcess>>()>& start) {
  // The streams the client opens for this request, by type.
  std::vector<std::string> expected{"error"};
  if (options.stdin) expected.emplace_back("stdin");
  if (options.stdout) expected.emplace_back("stdout");
  if (options.stderr && !options.tty) expected.emplace_back("stderr");
  if (has_resize_stream(protocol, options.tty)) expected.emplace_back("resize");
  std::map<std::string, uint32_t, std::less<>> by_type;
  auto enough = [&](const std::vector<SpdySession::Stream>& streams) {
    for (const auto& s : streams) by_type.emplace(std::string(s.type()), s.id);
    for (const auto& type : expected)
      if (!by_type.contains(type)) return false;
    return true;
  };
  CTRD_RETURN_IF_ERROR(session.accept_streams(enough, Clock::now() + kStreamCreationTimeout).status());
  const uint32_t error_stream = by_type.at("error");

  auto process = start();
  if (!process.ok()) {
    session.send(error_stream, remote_command_status(protocol, std::nullopt, process.status().message()),
                 true);
    session.close();
    return errdefs::Status::Ok();
  }
  StreamProcess& p = **process;
  auto bind_out = [&](const char* type, os::UniqueFd& fd) {
    auto it = by_type.find(type);
    if (it != by_type.end() && fd.valid()) {
      session.pipe_out(it->second, std::move(fd));
    } else if (it != by_type.end()) {
      session.send(it->second, {}, true);  // nothing will come on it
    }
  };
  bind_out("stdout", p.stdout_fd);
  bind_out("stderr", p.stderr_fd);
  if (auto it = by_type.find("stdin"); it != by_type.end() && p.stdin_fd.valid())
    session.pipe_in(it->second, std::move(p.stdin_fd), [&p] { p.stdin_closed(); });
  if (auto it = by_type.find("resize"); it != by_type.end()) {
    auto line = std::make_shared<std::string>();
    session.on_data(it->second, [line, &p](std::string_view bytes) {
      // One JSON object per line, as the client's encoder writes them.
      line->append(bytes);
      for (size_t nl; (nl = line->find('\n')) != std::string::npos; line->erase(0, nl + 1)) {
        json size = json::parse(line->substr(0, nl), nullptr, /*allow_exceptions=*/false);
        if (!size.is_object()) continue;
        const auto width = size.value("Width", 0), height = size.value("Height", 0);
        if (width > 0 && height > 0 && width <= 65535 && height <= 65535)
          (void)p.resize(static_cast<uint16_t>(width), static_cast<uint16_t>(height));
      }
      if (line->size() > 4096) line->clear();  // no newline in sight: not a size
    });
  }

  std::optional<Clock::time_point> drain_until;
  auto finished = [&] {
    if (!p.exit_code()) return false;
    if (!drain_until) drain_until = Clock::now() + kOutputDrainTimeout;
    return session.outputs_done() || Clock::now() >= *drain_until;
  };
  CTRD_RETURN_IF_ERROR(session.run(p.exit_fd(), finished));
  session.send(error_stream, remote_command_status(protocol, p.exit_code(), ""), true);
  session.close();
  return errdefs::Status::Ok();
}

}  // namespace ctrd::streaming
