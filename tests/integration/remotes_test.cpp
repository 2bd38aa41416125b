// Pulls with src/remotes from registries on loopback into a content store in
// a temporary directory (no daemon): Debian's docker-registry (anonymous and
// with htpasswd Basic auth; images pushed with skopeo or through the
// registry API), and a small python3 registry that lies on purpose.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "content/local/store.h"
#include "images/images.h"
#include "metadata/db.h"
#include "remotes/pull.h"
#include "remotes/resolver.h"
#include "support/daemon_process.h"
#include "support/temp_dir.h"

namespace ctrd::testing {
namespace {

namespace fs = std::filesystem;
using errdefs::Code;
using ::testing::HasSubstr;

constexpr const char* kGcConfig = "containerd.io/gc.ref.content.config";
constexpr const char* kDistSource = "containerd.io/distribution.source.127.0.0.1";

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct RunResult {
  std::optional<int> exit_code;
  std::string output;
};

// Runs argv to completion (bounded), stdout and stderr together.
RunResult run(const std::vector<std::string>& argv, const fs::path& log) {
  DaemonProcess p(argv, log);
  RunResult r;
  r.exit_code = p.wait(std::chrono::seconds(120));
  r.output = read_text(log);
  return r;
}

// A server process on a loopback port, ready once the port accepts.
class Server {
 public:
  Server(const std::vector<std::string>& argv, const fs::path& log, uint16_t port) : port_(port), log_(log) {
    process_ = std::make_unique<DaemonProcess>(argv, log);
    ready_ = poll_until([&] { return accepts(port_) || !process_->running(); }, std::chrono::seconds(30),
                        std::chrono::milliseconds(20)) &&
             process_->running();
  }
  ~Server() { process_->stop(SIGTERM, std::chrono::seconds(5)); }
  bool ready() const { return ready_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  std::string log() const { return read_text(log_); }

 private:
  uint16_t port_;
  fs::path log_;
  std::unique_ptr<DaemonProcess> process_;
  bool ready_ = false;
};

// Debian's docker-registry on loopback, optionally behind htpasswd Basic auth.
std::unique_ptr<Server> start_registry(const fs::path& dir, const std::string& htpasswd = "") {
  uint16_t port = free_port();
  fs::create_directories(dir / "storage");
  std::ofstream config(dir / "registry.yml");
  config << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
         << (dir / "storage").string() << "\nhttp:\n  addr: 127.0.0.1:" << port << "\n";
  if (!htpasswd.empty()) {
    std::ofstream(dir / "htpasswd") << htpasswd;
    config << "auth:\n  htpasswd:\n    realm: ctrd-test\n    path: " << (dir / "htpasswd").string() << "\n";
  }
  config.close();
  return std::make_unique<Server>(
      std::vector<std::string>{"/usr/bin/docker-registry", "serve", (dir / "registry.yml").string()},
      dir / "registry.log", port);
}

// Pushes a two-platform OCI index (linux/amd64 and linux/arm64, one small
// layer each) through the registry API, and prints what it pushed as JSON.
constexpr const char* kPushIndexPy = R"PY(
import gzip, hashlib, io, json, sys, tarfile, urllib.request
base, repo, tag = sys.argv[1], sys.argv[2], sys.argv[3]
auth = sys.argv[4] if len(sys.argv) > 4 else None
def req(method, url, data=None, ctype=None):
    r = urllib.request.Request(url, data=data, method=method)
    if ctype: r.add_header("Content-Type", ctype)
    if auth: r.add_header("Authorization", "Basic " + auth)
    return urllib.request.urlopen(r)
def put_blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = req("POST", base + "/v2/" + repo + "/blobs/uploads/").headers["Location"]
    if loc.startswith("/"): loc = base + loc
    req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, data, "application/octet-stream")
    return {"digest": d, "size": len(data)}
out = {"manifests": {}, "configs": {}, "layers": {}}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
for arch in ("amd64", "arm64"):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        body = ("built for " + arch + "\n").encode()
        info = tarfile.TarInfo("arch.txt"); info.size = len(body); info.mtime = 0
        t.addfile(info, io.BytesIO(body))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers",
             "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode()
    lb, cb = put_blob(layer), put_blob(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(cb, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(lb, mediaType="application/vnd.oci.image.layer.v1.tar+gzip")]}).encode()
    md = "sha256:" + hashlib.sha256(manifest).hexdigest()
    req("PUT", base + "/v2/" + repo + "/manifests/" + md, manifest, "application/vnd.oci.image.manifest.v1+json")
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
        "size": len(manifest), "platform": {"os": "linux", "architecture": arch}})
    out["manifests"][arch], out["configs"][arch], out["layers"][arch] = md, cb["digest"], lb["digest"]
data = json.dumps(index).encode()
req("PUT", base + "/v2/" + repo + "/manifests/" + tag, data, "application/vnd.oci.image.index.v1+json")
out["index"] = "sha256:" + hashlib.sha256(data).hexdigest()
print(json.dumps(out))
)PY";

// A registry that misbehaves on purpose; the repository name picks how.
//   lie      the manifest's bytes are not the digest it is served under
//   big      a 5 MiB manifest
//   loop     the config blob redirects to itself
//   endless  the config blob goes on past its size
//   stall    the config blob stops after two bytes
//   bearer   everything needs a Bearer token from /token (the good case)
constexpr const char* kFakeRegistryPy = R"PY(
import hashlib, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port = int(sys.argv[1])
def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(CONFIG), "size": len(CONFIG)},
    "layers": []}).encode()
LIE = MANIFEST.replace(b'"layers": []', b'"layers": [] ')
MT = "application/vnd.oci.image.manifest.v1+json"
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): sys.stderr.write((a[0] % a[1:]) + "\n")
    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers: self.send_header(k, v)
        if not any(k == "Content-Length" for k, _ in headers): self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def do_HEAD(self): self.do_GET()
    def do_GET(self):
        p = self.path.split("?")[0].split("/")
        if self.path.startswith("/token"):
            if "scope=repository%3Abearer%3Apull" not in self.path: return self.send(403)
            return self.send(200, json.dumps({"access_token": "good-token"}).encode())
        if p[:2] != ["", "v2"] or len(p) < 5: return self.send(200 if self.path == "/v2/" else 404)
        repo, kind, obj = p[2], p[3], p[4]
        if repo == "bearer" and self.headers.get("Authorization") != "Bearer good-token":
            return self.send(401, b"{}", [("WWW-Authenticate", 'Bearer realm="http://127.0.0.1:%d/token",service="fake",scope="repository:bearer:pull"' % port)])
        if kind == "manifests":
            if repo == "lie":
                return self.send(200, LIE, [("Content-Type", MT), ("Docker-Content-Digest", sha(MANIFEST))])
            if repo == "big":
                body = b" " * (5 << 20)
                return self.send(200, body, [("Content-Type", MT), ("Docker-Content-Digest", sha(body))])
            return self.send(200, MANIFEST, [("Content-Type", MT), ("Docker-Content-Digest", sha(MANIFEST))])
        if kind == "blobs" and obj == sha(CONFIG):
            if repo == "loop":
                return self.send(307, b"", [("Location", self.path)])
            if repo == "endless":
                self.send_response(200); self.send_header("Connection", "close"); self.end_headers()
                try:
                    while True: self.wfile.write(b"x" * 65536)
                except Exception: return
            if repo == "stall":
                self.send_response(200); self.send_header("Content-Length", str(len(CONFIG))); self.end_headers()
                self.wfile.write(CONFIG[:2]); self.wfile.flush(); time.sleep(60); return
            return self.send(200, CONFIG)
        self.send(404)
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
)PY";

class RemotesPull : public ::testing::Test {
 protected:
  void SetUp() override {
    auto blobs = content::local::open_store(dir_.sub("content"));
    ASSERT_TRUE(blobs.ok()) << blobs.status().to_string();
    auto db = metadata::DB::open(dir_.sub("metadata"), *blobs);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    db_ = *db;
    store_ = db_->content_store("default");
  }

  std::map<std::string, content::Info> blobs() {
    std::map<std::string, content::Info> out;
    EXPECT_TRUE(store_
                    ->walk(
                        [&](const content::Info& info) {
                          out[info.digest] = info;
                          return errdefs::Status::Ok();
                        },
                        {})
                    .ok());
    return out;
  }
  size_t ingests() {
    auto s = store_->list_statuses({});
    return s.ok() ? s->size() : 999;
  }
  fs::path script(const std::string& name, const char* text) {
    fs::path p = dir_.path() / name;
    std::ofstream(p) << text;
    return p;
  }

  TempDir dir_;
  std::shared_ptr<metadata::DB> db_;
  std::shared_ptr<content::Store> store_;
};

TEST_F(RemotesPull, BusyboxFromLoopbackRegistryWithLabels) {
  auto registry = start_registry(dir_.path() / "registry");
  ASSERT_TRUE(registry->ready()) << registry->log();
  fs::path tar = dir_.path() / "busybox.tar";
  auto made =
      run({"/usr/bin/python3", CTRD_MKIMAGE_PATH, "--busybox", tar.string()}, dir_.path() / "mkimage.log");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto pushed =
      run({"/usr/bin/skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
           "oci-archive:" + tar.string(), "docker://" + registry->host() + "/library/busybox:latest"},
          dir_.path() / "skopeo.log");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  remotes::Resolver resolver;
  const std::string ref = registry->host() + "/library/busybox:latest";
  auto target = remotes::pull(resolver, ref, *store_);
  ASSERT_TRUE(target.ok()) << target.status().to_string();

  // What the pull stored is a complete image for this host.
  images::StoreProvider provider(*store_);
  auto image = images::resolve(provider, *target, images::host_platform());
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  auto stored = blobs();
  ASSERT_TRUE(stored.count(image->manifest.digest));
  const content::Labels& manifest_labels = stored[image->manifest.digest].labels;
  EXPECT_EQ(manifest_labels.at(kGcConfig), image->config.digest);
  for (size_t i = 0; i < image->layers.size(); ++i) {
    EXPECT_EQ(manifest_labels.at("containerd.io/gc.ref.content.l." + std::to_string(i)),
              image->layers[i].digest);
  }
  for (const auto& [digest, info] : stored) {
    EXPECT_EQ(info.labels.at(kDistSource), "library/busybox") << digest;
  }
  EXPECT_EQ(ingests(), 0u);

  // Again, from another repository: nothing is fetched, the source label lists both.
  auto copied =
      run({"/usr/bin/skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
           "--dest-tls-verify=false", "docker://" + ref, "docker://" + registry->host() + "/team/busybox:1"},
          dir_.path() / "skopeo2.log");
  ASSERT_EQ(copied.exit_code, 0) << copied.output;
  auto again = remotes::pull(resolver, registry->host() + "/team/busybox:1", *store_);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->digest, target->digest);
  for (const auto& [digest, info] : blobs()) {
    EXPECT_EQ(info.labels.at(kDistSource), "library/busybox,team/busybox") << digest;
  }
}

TEST_F(RemotesPull, IndexGivesOnlyThePlatformsManifest) {
  auto registry = start_registry(dir_.path() / "registry");
  ASSERT_TRUE(registry->ready()) << registry->log();
  auto pushed = run({"/usr/bin/python3", script("push_index.py", kPushIndexPy).string(),
                     "http://" + registry->host(), "multi/app", "v1"},
                    dir_.path() / "push.log");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  auto info = nlohmann::json::parse(pushed.output);

  remotes::Resolver resolver;
  remotes::PullOptions options;
  options.platform = {"linux", "arm64", ""};
  auto target = remotes::pull(resolver, registry->host() + "/multi/app:v1", *store_, options);
  ASSERT_TRUE(target.ok()) << target.status().to_string();
  EXPECT_EQ(target->digest, info["index"].get<std::string>());
  EXPECT_EQ(target->media_type, "application/vnd.oci.image.index.v1+json");

  auto stored = blobs();
  EXPECT_EQ(stored.size(), 4u);  // index, arm64 manifest, config, layer
  EXPECT_EQ(stored[target->digest].labels.at("containerd.io/gc.ref.content.m.0"), info["manifests"]["arm64"]);
  EXPECT_FALSE(stored[target->digest].labels.count("containerd.io/gc.ref.content.m.1"));
  EXPECT_TRUE(stored.count(info["configs"]["arm64"]));
  EXPECT_TRUE(stored.count(info["layers"]["arm64"]));
  EXPECT_FALSE(stored.count(info["manifests"]["amd64"]));
  EXPECT_FALSE(stored.count(info["layers"]["amd64"]));
  EXPECT_EQ(stored[info["manifests"]["arm64"]].labels.at(kGcConfig), info["configs"]["arm64"]);

  options.platform = {"windows", "amd64", ""};
  auto none = remotes::pull(resolver, registry->host() + "/multi/app:v1", *store_, options);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("no match for platform"));
}

TEST_F(RemotesPull, BasicAuthWithHtpasswdRegistry) {
  // docker-registry reads bcrypt hashes only; python3's crypt makes them ($2b$).
  auto hashed =
      run({"/usr/bin/python3", "-W", "ignore", "-c",
           "import crypt; print('puller:' + crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))"},
          dir_.path() / "hash.log");
  ASSERT_EQ(hashed.exit_code, 0) << hashed.output;
  auto registry = start_registry(dir_.path() / "registry", hashed.output);
  ASSERT_TRUE(registry->ready()) << registry->log();
  // "puller:s3cret" in base64, for the pushing script.
  auto pushed = run({"/usr/bin/python3", script("push_index.py", kPushIndexPy).string(),
                     "http://" + registry->host(), "private/app", "v1", "cHVsbGVyOnMzY3JldA=="},
                    dir_.path() / "push.log");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  const std::string ref = registry->host() + "/private/app:v1";

  remotes::Resolver anonymous;
  auto refused = remotes::pull(anonymous, ref, *store_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied) << refused.status().to_string();

  auto with_credentials = [&](const std::string& password) {
    remotes::HostsConfig config;
    config.configs[registry->host()].auth = {"puller", password, "", ""};
    remotes::ResolverOptions options;
    options.hosts = [config](std::string_view host) { return remotes::configure_hosts(config, host); };
    return remotes::Resolver(options);
  };
  remotes::Resolver wrong = with_credentials("wrong");
  auto denied = remotes::pull(wrong, ref, *store_);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), Code::kPermissionDenied) << denied.status().to_string();
  EXPECT_TRUE(blobs().empty());

  remotes::Resolver good = with_credentials("s3cret");
  auto target = remotes::pull(good, ref, *store_);
  ASSERT_TRUE(target.ok()) << target.status().to_string();
  EXPECT_EQ(blobs().size(), 4u);
}

class LyingRegistry : public RemotesPull {
 protected:
  void SetUp() override {
    RemotesPull::SetUp();
    uint16_t port = free_port();
    server_ = std::make_unique<Server>(
        std::vector<std::string>{"/usr/bin/python3", script("fake_registry.py", kFakeRegistryPy).string(),
                                 std::to_string(port)},
        dir_.path() / "fake.log", port);
    ASSERT_TRUE(server_->ready()) << server_->log();
    remotes::ResolverOptions options;
    options.limits.stall_timeout = std::chrono::seconds(1);
    options.limits.max_redirects = 5;
    resolver_ = std::make_unique<remotes::Resolver>(options);
  }
  errdefs::Status pull(const std::string& repo) {
    return remotes::pull(*resolver_, server_->host() + "/" + repo + ":latest", *store_).status();
  }
  std::unique_ptr<Server> server_;
  std::unique_ptr<remotes::Resolver> resolver_;
};

TEST_F(LyingRegistry, WrongManifestDigestIsDataLossAndNothingIsCommitted) {
  errdefs::Status s = pull("lie");
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.to_string();
  // Both digests are named: the one promised and the one received.
  EXPECT_THAT(s.message(), ::testing::ContainsRegex("sha256:[0-9a-f]{64} for sha256:[0-9a-f]{64}"));
  EXPECT_TRUE(blobs().empty());
  EXPECT_EQ(ingests(), 0u);
}

TEST_F(LyingRegistry, OversizedManifestIsResourceExhausted) {
  errdefs::Status s = pull("big");
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.to_string();
  EXPECT_TRUE(blobs().empty());
}

TEST_F(LyingRegistry, RedirectLoopStopsAtTheLimit) {
  errdefs::Status s = pull("loop");
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.to_string();
  EXPECT_THAT(s.message(), HasSubstr("more than 5 redirects"));
  EXPECT_EQ(blobs().size(), 1u);  // the manifest, committed before its config failed
  EXPECT_EQ(ingests(), 0u);
}

TEST_F(LyingRegistry, BodyPastTheDeclaredSizeIsCutOff) {
  errdefs::Status s = pull("endless");
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.to_string();
  EXPECT_THAT(s.message(), HasSubstr("sent more than the"));
  EXPECT_EQ(blobs().size(), 1u);
  EXPECT_EQ(ingests(), 0u);
}

TEST_F(LyingRegistry, StalledTransferIsDeadlineExceeded) {
  errdefs::Status s = pull("stall");
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded) << s.to_string();
  EXPECT_EQ(blobs().size(), 1u);
  EXPECT_EQ(ingests(), 0u);
}

TEST_F(LyingRegistry, BearerTokenFlow) {
  errdefs::Status s = pull("bearer");
  ASSERT_TRUE(s.ok()) << s.to_string() << server_->log();
  EXPECT_EQ(blobs().size(), 2u);
  EXPECT_THAT(server_->log(), HasSubstr("/token?service=fake&scope=repository%3Abearer%3Apull"));
}

}  // namespace
}  // namespace ctrd::testing
