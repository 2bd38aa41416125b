#include "server/server.h"

#include <fcntl.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "events/exchange.h"
#include "executor/worker_pool.h"
#include "log/log.h"
#include "metrics/grpc_server_metrics.h"
#include "metrics/http_server.h"
#include "metrics/process.h"
#include "os/dirs.h"
#include "os/unix_socket.h"
#include "server/call_tracker.h"
#include "server/service.h"
#include "server/shutdown_watchdog.h"

namespace ctrd::server {

using errdefs::Status;
using os::prepare_unix_socket;
using os::secure_unix_socket;
using os::UnixListener;

namespace {

errdefs::StatusOr<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return errdefs::FromErrno(errno, "read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string init_error_text(const Status& s) {
  // ctr reports a plugin whose error mentions "skip plugin" as skipped.
  if (errdefs::IsSkip(s)) return s.message() + ": skip plugin";
  return s.message();
}

// A duration as Go prints time.Duration, which containerd's logs carry.
std::string go_duration(double seconds) {
  std::ostringstream out;
  if (seconds >= 1) {
    out << seconds << "s";
  } else if (seconds >= 1e-3) {
    out << seconds * 1e3 << "ms";
  } else {
    out << seconds * 1e6 << "µs";
  }
  return out.str();
}

std::shared_ptr<metrics::Collector> plugin_collector(std::vector<PluginInit> inits) {
  return metrics::make_collector([inits = std::move(inits)](metrics::Writer& w) {
    if (inits.empty()) return;
    w.header("ctrd_plugin_init_seconds", "Time each plugin's init took, in seconds.", metrics::Type::kGauge);
    for (const auto& p : inits)
      w.sample("ctrd_plugin_init_seconds", {{"id", p.id}, {"type", p.type}}, p.seconds);
    // One series per possible status, 1 for the plugin's: alerts can select on status="error".
    w.header("ctrd_plugin_status",
             "Whether each plugin's init ended ok, skipped or in error (1 for its status).",
             metrics::Type::kGauge);
    for (const auto& p : inits) {
      for (std::string_view status : {"error", "ok", "skip"}) {
        w.sample("ctrd_plugin_status", {{"id", p.id}, {"status", std::string(status)}, {"type", p.type}},
                 p.status == status ? 1 : 0);
      }
    }
  });
}

}  // namespace

Server::Server(const config::LoadedConfig& config, std::shared_ptr<events::Exchange> events)
    : config_(config),
      events_(std::move(events)),
      plugins_(std::make_shared<plugin::Set>()),
      calls_(std::make_shared<CallTracker>()),
      blocking_(std::make_shared<executor::WorkerPool>(
          static_cast<size_t>(std::max<int32_t>(config.server.grpc.blocking_threads, 1)))) {}

Server::~Server() {
  stop_metrics();
  if (grpc_) grpc_->Shutdown(std::chrono::system_clock::now());
  grpc_.reset();
  blocking_->stop();
  close_plugins();
}

errdefs::StatusOr<std::unique_ptr<Server>> Server::create(const config::LoadedConfig& config,
                                                          const plugin::Registry& registry) {
  const auto& cfg = config.server;
  // As containerd since CVE-2021-41103: nobody else may enter the root (images,
  // snapshots, metadata); the state dir is traversable for the shims' sake.
  CTRD_RETURN_IF_ERROR(os::ensure_dir(cfg.root, 0700));
  CTRD_RETURN_IF_ERROR(os::ensure_dir(cfg.state, 0711));
  // A live daemon on our socket is found before any plugin touches the root.
  CTRD_RETURN_IF_ERROR(prepare_unix_socket(cfg.grpc.address));
  CTRD_RETURN_IF_ERROR(prepare_unix_socket(cfg.ttrpc_address()));
  std::unique_ptr<Server> s(new Server(config, std::make_shared<events::Exchange>()));
  CTRD_RETURN_IF_ERROR(s->init_plugins(registry));
  return s;
}

Status Server::init_plugins(const plugin::Registry& registry) {
  const auto& cfg = config_.server;
  const bool v1 = cfg.version < 2;
  const std::set<std::string> disabled(cfg.disabled_plugins.begin(), cfg.disabled_plugins.end());
  auto graph =
      registry.graph([&](const plugin::Registration& r) { return disabled.contains(v1 ? r.id : r.uri()); });

  // Plugin sections that name nothing registered are likely typos.
  std::set<std::string> known;
  for (const auto& r : registry.registrations()) known.insert(config_.plugin_key(r->type, r->id));
  for (const auto& [key, node] : *config_.plugins) {
    if (!known.contains(std::string(key.str()))) {
      log::warn("config names an unknown plugin", {{"plugin", std::string(key.str())}});
    }
  }

  plugin::InitContext::Options options{cfg.root, cfg.state, cfg.grpc.address, cfg.ttrpc_address(),
                                       events_,  blocking_};
  for (const auto& node : graph) {
    const auto& reg = *node.registration;
    const std::string uri = reg.uri();
    log::info("loading plugin \"" + uri + "\"...", {{"type", reg.type}});

    Status error = node.unsatisfied;
    std::shared_ptr<plugin::ConfigHolder> holder;
    if (error.ok() && reg.config) {
      holder = reg.config();
      if (const toml::table* section = config_.plugin_section(reg.type, reg.id)) {
        auto report =
            config::decode(*section, "plugins." + config::path_key(config_.plugin_key(reg.type, reg.id)),
                           [&](config::Binder& b) { holder->bind(b); });
        for (const auto& k : report.unknown_keys) log::warn("unknown config key", {{"key", k}, {"id", uri}});
        if (!report.error.ok()) error = report.error.with_context("invalid config");
      }
    }

    plugin::Meta meta;
    plugin::Instance instance;
    double init_seconds = 0;
    if (error.ok()) {
      plugin::InitContext ic(reg, options, holder, plugins_);
      const auto init_started = std::chrono::steady_clock::now();
      auto result = reg.init(ic);
      init_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - init_started).count();
      log::debug("plugin init finished", {{"id", uri}, {"duration", go_duration(init_seconds)}});
      meta = std::move(ic.meta());
      if (result.ok()) {
        instance = std::move(result).value();
      } else {
        error = result.status();
      }
    }

    if (errdefs::IsSkip(error)) {
      log::info("skip loading plugin \"" + uri + "\"...",
                {{"error", init_error_text(error)}, {"type", reg.type}});
    } else if (!error.ok()) {
      log::warn("failed to load plugin " + uri, {{"error", error.message()}});
    }
    auto p = std::make_shared<plugin::Plugin>(reg, std::move(meta), std::move(instance), std::move(error));
    plugin_inits_.push_back({reg.type, reg.id, std::string(p->status()), init_seconds});
    if (auto s = plugins_->add(p); !s.ok()) {
      log::warn("plugin initialized twice", {{"id", uri}, {"error", s.message()}});
    }
  }

  std::vector<std::string> missing;
  for (const auto& required : cfg.required_plugins) {
    const plugin::Plugin* found = nullptr;
    for (const auto& p : plugins_->ordered()) {
      if (p->registration().uri() == required) found = p.get();
    }
    if (found == nullptr) {
      missing.push_back(required + " (not registered or disabled)");
    } else if (!found->ok()) {
      missing.push_back(required + " (" + found->error().message() + ")");
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return errdefs::FailedPrecondition("required plugins did not initialize: " + list);
  }
  return Status::Ok();
}

Status Server::start_listeners() {
  const auto& g = config_.server.grpc;
  CTRD_RETURN_IF_ERROR(prepare_unix_socket(g.address));

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + g.address, grpc::InsecureServerCredentials());
  if (!g.tcp_address.empty()) {
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!g.tcp_tls_cert.empty() || !g.tcp_tls_key.empty()) {
      CTRD_ASSIGN_OR_RETURN(std::string cert, read_text(g.tcp_tls_cert));
      CTRD_ASSIGN_OR_RETURN(std::string key, read_text(g.tcp_tls_key));
      grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      ssl.pem_key_cert_pairs.push_back({key, cert});
      if (!g.tcp_tls_ca.empty()) {
        CTRD_ASSIGN_OR_RETURN(ssl.pem_root_certs, read_text(g.tcp_tls_ca));
        ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      }
      creds = grpc::SslServerCredentials(ssl);
    }
    builder.AddListeningPort(g.tcp_address, creds);
  }
  builder.SetMaxReceiveMessageSize(g.max_recv_message_size);
  builder.SetMaxSendMessageSize(g.max_send_message_size);

  for (const auto& p : plugins_->ordered()) {
    if (!p->ok()) continue;
    if (auto svc = p->instance().get<GrpcService>(); svc.ok()) (*svc)->register_grpc(builder);
  }
  prepare_interceptors(builder);

  grpc_ = builder.BuildAndStart();
  if (!grpc_) {
    return errdefs::Unavailable("failed to start gRPC server on " + g.address +
                                (g.tcp_address.empty() ? "" : " and " + g.tcp_address));
  }
  CTRD_RETURN_IF_ERROR(secure_unix_socket(g.address, g.uid, g.gid));
  log::info("serving...", {{"address", g.address}});
  if (!g.tcp_address.empty()) {
    log::info("serving...", {{"address", g.tcp_address}});
    // Anyone who can reach that address has the whole API: say so.
    if (g.tcp_tls_cert.empty()) {
      log::warn("gRPC on TCP without TLS: any client that can reach this address controls the daemon",
                {{"address", g.tcp_address}});
    }
  }

  CTRD_ASSIGN_OR_RETURN(ttrpc_, UnixListener::listen(config_.server.ttrpc_address(), config_.server.ttrpc.uid,
                                                     config_.server.ttrpc.gid));
  ttrpc_server_ = std::make_unique<ttrpc::Server>();
  for (const auto& p : plugins_->ordered()) {
    if (!p->ok()) continue;
    if (auto svc = p->instance().get<TtrpcService>(); svc.ok()) {
      CTRD_RETURN_IF_ERROR((*svc)->register_ttrpc(*ttrpc_server_).with_context(p->registration().uri()));
    }
  }
  // The listener keeps the socket path (and removes it); the server gets its own descriptor.
  int listen_fd = ::fcntl(ttrpc_->fd(), F_DUPFD_CLOEXEC, 0);
  if (listen_fd < 0) return errdefs::FromErrno(errno, "ttrpc listener");
  CTRD_RETURN_IF_ERROR(ttrpc_server_->serve(os::UniqueFd(listen_fd)));
  log::info("serving...", {{"address", ttrpc_->path()}});
  return start_metrics();
}

void Server::prepare_interceptors(grpc::ServerBuilder& builder) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(calls_->interceptor_factory());
  const auto& m = config_.server.metrics;
  if (!m.address.empty()) {
    auto grpc_metrics = metrics::GrpcServerMetrics::create(metrics_, m.grpc_histogram);
    builder.SetOption(grpc_metrics->preregister_option());
    creators.push_back(grpc_metrics->interceptor_factory());
  }
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

Status Server::start_metrics() {
  const auto& address = config_.server.metrics.address;
  if (address.empty()) return Status::Ok();
  metric_collectors_.push_back(metrics_->add_collector(metrics::process_collector()));
  metric_collectors_.push_back(metrics_->add_collector(plugin_collector(plugin_inits_)));
  std::map<std::string, metrics::HttpServer::Page> pages;
  pages["/v1/metrics"] = {std::string(metrics::kContentType),
                          [registry = metrics_] { return registry->render(); }};
  CTRD_ASSIGN_OR_RETURN(metrics_http_, metrics::HttpServer::start(address, std::move(pages)));
  log::info("serving metrics...", {{"address", address}});
  return Status::Ok();
}

void Server::stop_metrics() {
  if (metrics_http_) metrics_http_->stop();
  metrics_http_.reset();
  metric_collectors_.clear();
}

Status Server::serve(const std::function<void()>& on_serving, const std::function<void()>& on_stopping) {
  const auto started = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    if (shutdown_requested_) return Status::Ok();
  }
  if (auto s = start_listeners(); !s.ok()) {
    if (grpc_) {
      grpc_->Shutdown(std::chrono::system_clock::now());
      ::unlink(config_.server.grpc.address.c_str());  // ours: the server had bound it
    }
    if (ttrpc_server_) ttrpc_server_->shutdown();
    ttrpc_.reset();
    stop_metrics();
    return s;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::ostringstream boot;
  boot << "ctrd successfully booted in " << secs << "s";
  log::info(boot.str());
  if (on_serving) on_serving();

  {
    std::unique_lock lock(mu_);
    serving_ = true;
    cv_.wait(lock, [this] { return shutdown_requested_; });
  }
  if (on_stopping) on_stopping();
  log::info("stopping...");
  // Whatever a client or a plugin does, the process ends within the limit.
  ShutdownWatchdog watchdog(kShutdownLimit, [this] { exit_undrained(); });
  stop_metrics();
  // Long-lived event streams end first so the grace period goes to real calls.
  events_->close_all(errdefs::Unavailable("server is shutting down"));
  grpc_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  grpc_->Wait();
  // Every call has finished, so no job is queued any more: this only joins.
  blocking_->stop();
  grpc_.reset();
  ::unlink(config_.server.grpc.address.c_str());
  ttrpc_server_->shutdown();
  ttrpc_.reset();
  close_plugins();
  log::info("stopped");
  return Status::Ok();
}

void Server::exit_undrained() {
  const auto now = std::chrono::steady_clock::now();
  const auto calls = calls_->in_flight();
  for (const auto& call : calls) {
    const double age = std::chrono::duration<double>(now - call.started).count();
    log::error("call did not drain before shutdown",
               {{"method", call.method}, {"age", std::to_string(age) + "s"}});
  }
  log::error(
      "shutdown did not complete in time; exiting anyway",
      {{"limit", std::to_string(kShutdownLimit.count()) + "s"}, {"calls", std::to_string(calls.size())}});
  // The sockets are ours; a next start would replace them anyway.
  ::unlink(config_.server.grpc.address.c_str());
  ::unlink(config_.server.ttrpc_address().c_str());
  // No destructors: the threads still running own what they use.
  std::_Exit(0);
}

void Server::shutdown() {
  std::lock_guard lock(mu_);
  shutdown_requested_ = true;
  cv_.notify_all();
}

void Server::close_plugins() {
  const auto& ordered = plugins_->ordered();
  for (auto it = ordered.rbegin(); it != ordered.rend(); ++it) {
    const auto& closer = (*it)->instance().closer();
    if (!closer) continue;
    if (auto s = closer->close(); !s.ok()) {
      log::warn("failed to close plugin", {{"id", (*it)->registration().uri()}, {"error", s.message()}});
    }
  }
  plugins_ = std::make_shared<plugin::Set>();
}

}  // namespace ctrd::server
