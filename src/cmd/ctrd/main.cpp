// ctrd: a containerd-compatible container daemon.
//
//   ctrd [--config F] [--root D] [--state D] [--address A] [--log-level L]
//   ctrd config default | dump | migrate
//   ctrd --version
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cmd/ctrd/builtins.h"
#include "cmd/ctrd/plugin_dir.h"
#include "cmd/ctrd/publish.h"
#include "cmd/ctrd/serve.h"
#include "cmd/ctrd/systemd.h"
#include "config/config.h"
#include "diff/stream_processor.h"
#include "log/log.h"
#include "plugin/graph_view.h"
#include "server/server.h"
#include "version/version.h"

namespace {

using namespace ctrd;

struct Options {
  std::string config_path{config::kDefaultConfigPath};
  bool config_given = false;
  std::optional<std::string> root, state, address, log_level;
  std::string ns, topic;             // publish
  std::string format;                // plugins graph
  std::vector<std::string> command;  // e.g. {"config", "default"}
  bool version = false;
  bool help = false;
};

constexpr const char* kUsage = R"(ctrd: a containerd-compatible container daemon

Usage:
  ctrd [options]              start the daemon
  ctrd config default         print the built-in default configuration
  ctrd config dump            print the effective configuration (file, imports, defaults)
  ctrd config migrate         print the configuration file (--config) rewritten as version 2
  ctrd serve-snapshotter --snapshotter overlayfs|native --root DIR --address SOCK
  ctrd serve-content --root DIR --address SOCK
                              serve one snapshotter or content store alone on a
                              socket, for another daemon's [proxy_plugins]
  ctrd plugins graph [--format text|dot]
                              print the plugin graph the configuration produces
                              (layers, requirements, what cannot come up and why)
                              without starting the daemon; dot renders with Graphviz
  ctrd publish --namespace NS --topic TOPIC < event
                              publish an event (a serialized google.protobuf.Any on
                              stdin) to the daemon at --address, as shims do
  ctrd --version              print version and revision

Options:
  -c, --config FILE      configuration file (default /etc/ctrd/config.toml; absent is fine)
      --root DIR         root directory for persistent data (default /var/lib/ctrd)
      --state DIR        state directory for runtime data (default /run/ctrd)
  -a, --address PATH     gRPC socket path (default /run/ctrd/ctrd.sock)
  -l, --log-level LEVEL  trace, debug, info, warn, error or fatal (default info)
  -h, --help             show this help
)";

std::optional<Options> parse_args(int argc, char** argv, std::string& error) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_value = true;
      }
    }
    auto take = [&](std::optional<std::string>& dst) {
      if (!has_value) {
        if (i + 1 >= argc) {
          error = "flag " + arg + " needs a value";
          return false;
        }
        value = argv[++i];
      }
      dst = value;
      return true;
    };
    std::optional<std::string> v;
    if (arg == "-c" || arg == "--config") {
      if (!take(v)) return std::nullopt;
      o.config_path = *v;
      o.config_given = true;
    } else if (arg == "--root") {
      if (!take(o.root)) return std::nullopt;
    } else if (arg == "--state") {
      if (!take(o.state)) return std::nullopt;
    } else if (arg == "-a" || arg == "--address") {
      if (!take(o.address)) return std::nullopt;
    } else if (arg == "-l" || arg == "--log-level") {
      if (!take(o.log_level)) return std::nullopt;
    } else if (arg == "-n" || arg == "--namespace") {
      if (!take(v)) return std::nullopt;
      o.ns = *v;
    } else if (arg == "--format") {
      if (!take(v)) return std::nullopt;
      o.format = *v;
    } else if (arg == "--topic") {
      if (!take(v)) return std::nullopt;
      o.topic = *v;
    } else if (arg == "-v" || arg == "--version") {
      o.version = true;
    } else if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (!arg.empty() && arg[0] == '-') {
      error = "unknown flag " + arg + " (ctrd --help lists them)";
      return std::nullopt;
    } else {
      o.command.push_back(arg);
    }
  }
  return o;
}

errdefs::StatusOr<config::LoadedConfig> load_config(const Options& o) {
  CTRD_ASSIGN_OR_RETURN(config::LoadedConfig cfg, config::load(o.config_path, o.config_given));
  if (o.root) cfg.server.root = *o.root;
  if (o.state) cfg.server.state = *o.state;
  if (o.address) cfg.server.grpc.address = *o.address;
  if (o.log_level) cfg.server.debug.level = *o.log_level;
  return cfg;
}

// The whole configuration as TOML: server keys plus every plugin's section,
// from its defaults overlaid with what `cfg` says.
errdefs::Status print_config(const config::LoadedConfig& cfg, const plugin::Registry& registry) {
  config::ServerConfig server = cfg.server;
  auto out = config::encode_from(server);
  toml::table plugins;
  for (const auto& r : registry.registrations()) {
    if (!r->config) {
      // Listed all the same, so every plugin's section name is there to copy.
      plugins.insert_or_assign(cfg.plugin_key(r->type, r->id), toml::table{});
      continue;
    }
    auto holder = r->config();
    if (const toml::table* section = cfg.plugin_section(r->type, r->id)) {
      auto report = config::decode(*section, "plugins." + config::path_key(cfg.plugin_key(r->type, r->id)),
                                   [&](config::Binder& b) { holder->bind(b); });
      if (!report.error.ok()) return report.error;
    }
    plugins.insert_or_assign(cfg.plugin_key(r->type, r->id),
                             std::move(*config::encode([&](config::Binder& b) { holder->bind(b); })));
  }
  out->insert_or_assign("plugins", std::move(plugins));
  // Basic (double-quoted) strings, as containerd prints its config.
  std::cout << toml::toml_formatter(
                   *out, toml::toml_formatter::default_flags & ~toml::format_flags::allow_literal_strings)
            << "\n";
  return errdefs::Status::Ok();
}

// A version 1 file keys plugin sections by id; version 2 by type and id.
// Only what the file says is kept: defaults stay implicit.
errdefs::Status migrate_config(const Options& o, const plugin::Registry& registry) {
  std::ifstream in(o.config_path);
  if (!in) return errdefs::NotFound("config file " + o.config_path + " not found");
  std::stringstream text;
  text << in.rdbuf();
  CTRD_ASSIGN_OR_RETURN(toml::table table, config::parse(text.str(), o.config_path));
  const int64_t version = table["version"].value_or<int64_t>(1);
  if (version < 2) {
    if (auto* plugins = table["plugins"].as_table()) {
      toml::table renamed;
      for (auto& [key, section] : *plugins) {
        std::vector<std::string> uris;
        for (const auto& r : registry.registrations())
          if (r->id == key.str()) uris.push_back(r->uri());
        if (uris.size() == 1) {
          renamed.insert_or_assign(uris.front(), section);
        } else {
          std::cerr << "ctrd: config migrate: plugin \"" << key.str() << "\" "
                    << (uris.empty() ? "is not known" : "is ambiguous") << "; its section is kept as is\n";
          renamed.insert_or_assign(key.str(), section);
        }
      }
      table.insert_or_assign("plugins", std::move(renamed));
    }
  }
  table.insert_or_assign("version", int64_t{2});
  std::cout << toml::toml_formatter(table, (toml::toml_formatter::default_flags |
                                            toml::format_flags::relaxed_float_precision) &
                                               ~toml::format_flags::allow_literal_strings)
            << "\n";
  return errdefs::Status::Ok();
}

void set_oom_score(int score) {
  if (score == 0) return;
  std::ofstream f("/proc/self/oom_score_adj");
  f << score;
  if (!f) log::warn("failed to set OOM score", {{"score", std::to_string(score)}});
}

int run_daemon(const Options& o, plugin::Registry& registry) {
  // Signals go to one waiting thread; every other thread (gRPC's included) inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto cfg = load_config(o);
  if (!cfg.ok()) {
    log::fatal("failed to load config", {{"error", cfg.status().message()}});
    return 1;
  }
  const std::string level = cfg->server.debug.level.empty() ? "info" : cfg->server.debug.level;
  if (auto s = log::set_level(level); !s.ok()) {
    log::fatal("invalid log level", {{"error", s.message()}});
    return 1;
  }
  for (const auto& w : cfg->warnings) log::warn(w, {{"file", cfg->files.empty() ? "" : cfg->files.front()}});
  log::info("starting ctrd", {{"revision", version::kRevision}, {"version", version::kVersion}});
  set_oom_score(cfg->server.oom_score);
  cmd::load_plugin_dir(registry, cfg->server);
  if (auto s = cmd::register_config_plugins(registry, cfg->server); !s.ok()) {
    log::fatal("ctrd: " + s.message());
    return 1;
  }
  // Filled before the server starts, so the first Apply sees every processor.
  for (const auto& [id, sp] : cfg->server.stream_processors) {
    if (auto s = diff::StreamProcessors::global().add({id, sp.accepts, sp.returns, sp.path, sp.args, sp.env});
        !s.ok()) {
      log::fatal("ctrd: " + s.message());
      return 1;
    }
  }

  auto server = server::Server::create(*cfg, registry);
  if (!server.ok()) {
    log::fatal("ctrd: " + server.status().message());
    return 1;
  }
  // Waits for SIGINT or SIGTERM; a serve() that ends on its own wakes it
  // with SIGTERM so it can be joined.
  std::atomic<bool> serving_ended{false};
  std::thread signal_waiter([srv = server->get(), signals, &serving_ended] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (serving_ended) return;
    log::info("received signal", {{"signal", strsignal(sig)}});
    srv->shutdown();
  });
  struct JoinSignalWaiter {
    std::thread& thread;
    std::atomic<bool>& ended;
    ~JoinSignalWaiter() {
      ended = true;
      // SIGTERM is blocked in every thread; this one takes it in sigwait().
      ::pthread_kill(thread.native_handle(), SIGTERM);  // NOLINT(bugprone-bad-signal-to-kill-thread)
      thread.join();
    }
  } join_signal_waiter{signal_waiter, serving_ended};

  auto notify = [](std::string_view state) {
    if (!cmd::notify_service_manager(state))
      log::warn("failed to notify the service manager", {{"state", std::string(state)}});
  };
  if (auto s = (*server)->serve([&] { notify("READY=1"); }, [&] { notify("STOPPING=1"); }); !s.ok()) {
    log::fatal("ctrd: " + s.message());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (cmd::is_serve_command(argc, argv)) return cmd::serve_main(argc, argv);
  std::string error;
  auto opts = parse_args(argc, argv, error);
  if (!opts) {
    std::cerr << "ctrd: " << error << "\n";
    return 2;
  }
  if (opts->help) {
    std::cout << kUsage;
    return 0;
  }
  if (opts->version) {
    std::cout << version::kPackage << " " << version::kVersion << " " << version::kRevision << "\n";
    return 0;
  }

  plugin::Registry registry;
  cmd::register_builtins(registry);
  if (!registry.rejected().empty()) {
    for (const auto& s : registry.rejected()) std::cerr << "ctrd: " << s.message() << "\n";
    return 1;
  }

  if (opts->command.empty()) return run_daemon(*opts, registry);
  if (opts->command[0] == "config" && opts->command.size() == 2) {
    errdefs::Status s;
    if (opts->command[1] == "default") {
      config::LoadedConfig defaults = *config::decode(toml::table{});
      s = print_config(defaults, registry);
    } else if (opts->command[1] == "migrate") {
      s = migrate_config(*opts, registry);
    } else if (opts->command[1] == "dump") {
      auto cfg = load_config(*opts);
      s = cfg.ok() ? print_config(*cfg, registry) : cfg.status();
    } else {
      std::cerr << "ctrd: unknown config command \"" << opts->command[1]
                << "\" (want default, dump or migrate)\n";
      return 2;
    }
    if (!s.ok()) {
      std::cerr << "ctrd: " << s.message() << "\n";
      return 1;
    }
    return 0;
  }
  if (opts->command[0] == "plugins" && opts->command.size() == 2 && opts->command[1] == "graph") {
    auto format = plugin::parse_graph_format(opts->format);
    auto cfg = load_config(*opts);
    errdefs::Status s = !format.ok() ? format.status() : cfg.status();
    if (s.ok()) {
      cmd::load_plugin_dir(registry, cfg->server);
      s = cmd::register_config_plugins(registry, cfg->server);
    }
    if (!s.ok()) {
      std::cerr << "ctrd: " << s.message() << "\n";
      return 1;
    }
    const bool v1 = cfg->server.version < 2;
    const std::set<std::string> disabled(cfg->server.disabled_plugins.begin(),
                                         cfg->server.disabled_plugins.end());
    plugin::write_graph(
        registry, [&](const plugin::Registration& r) { return disabled.contains(v1 ? r.id : r.uri()); },
        *format, std::cout);
    return 0;
  }
  if (opts->command[0] == "publish" && opts->command.size() == 1) {
    auto cfg = load_config(*opts);
    if (!cfg.ok()) {
      std::cerr << "ctrd: " << cfg.status().message() << "\n";
      return 1;
    }
    return cmd::publish_event(cfg->server.grpc.address, opts->ns, opts->topic);
  }
  std::cerr << "ctrd: unknown command \"" << opts->command[0] << "\" (ctrd --help lists them)\n";
  return 2;
}
