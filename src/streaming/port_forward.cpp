#include "streaming/port_forward.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

namespace ctrd::streaming {
namespace {

std::optional<int32_t> parse_port(std::string_view text) {
  int32_t port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port <= 0 || port > 65535) return std::nullopt;
  return port;
}

struct Pair {
  std::optional<uint32_t> error_stream, data_stream;
  std::string port;
};

}  // namespace

errdefs::Status serve_port_forward(SpdySession& session, const PortForwardRequest& request,
                                   Runtime& runtime) {
  std::map<std::string, Pair> pairs;  // by request id
  session.on_stream([&](const SpdySession::Stream& stream) {
    const std::string type(stream.type());
    std::string request_id(spdy::header_value(stream.headers, "requestid"));
    // Clients before request ids: the error stream is opened just before its
    // data stream, two ids apart.
    if (request_id.empty())
      request_id = "stream-" + std::to_string(type == "data" ? stream.id - 2 : stream.id);
    Pair& pair = pairs[request_id];
    pair.port = std::string(spdy::header_value(stream.headers, "port"));
    if (type == "error") {
      pair.error_stream = stream.id;
    } else if (type == "data") {
      pair.data_stream = stream.id;
    } else {
      session.reset(stream.id, spdy::RstStatus::kProtocolError);
      return;
    }
    if (!pair.error_stream || !pair.data_stream) return;
    const uint32_t error_stream = *pair.error_stream, data_stream = *pair.data_stream;
    const std::string port_text = pair.port;
    pairs.erase(request_id);
    auto fail = [&](const std::string& message) {
      session.send(error_stream, message, true);
      session.send(data_stream, {}, true);
    };
    const auto port = parse_port(port_text);
    if (!port) return fail("invalid port " + errdefs::quoted(port_text));
    if (!request.ports.empty() &&
        std::find(request.ports.begin(), request.ports.end(), *port) == request.ports.end())
      return fail("port " + std::to_string(*port) + " was not asked for in the PortForward request");
    auto socket = runtime.port_forward(request.pod_sandbox_id, *port);
    if (!socket.ok())
      return fail("an error occurred forwarding " + std::to_string(*port) + " -> " + std::to_string(*port) +
                  ": " + socket.status().message());
    // The error stream stays open, empty, while the connection lasts.
    session.pipe_both(data_stream, std::move(*socket),
                      [&session, error_stream] { session.send(error_stream, {}, true); });
  });
  auto status = session.run(-1, [] { return false; });
  session.close();
  // The client ends a port forward by closing its connection: that is success.
  return status.code() == errdefs::Code::kUnavailable ? errdefs::Status::Ok() : status;
}

}  // namespace ctrd::streaming
