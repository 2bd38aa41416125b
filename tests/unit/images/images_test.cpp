#include "images/images.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "content/local/store.h"
#include "digest/sha256.h"
#include "support/temp_dir.h"

namespace ctrd::images {
namespace {

using content::Descriptor;
using errdefs::Code;
using json = nlohmann::json;

const Platform kAmd64{"linux", "amd64", ""};

class StringReader final : public content::ReaderAt {
 public:
  explicit StringReader(std::string data) : data_(std::move(data)) {}
  errdefs::StatusOr<size_t> read_at(char* buf, size_t n, int64_t offset) override {
    if (offset >= size()) return size_t{0};
    const size_t count = std::min(n, data_.size() - static_cast<size_t>(offset));
    data_.copy(buf, count, static_cast<size_t>(offset));
    return count;
  }
  int64_t size() const override { return static_cast<int64_t>(data_.size()); }

 private:
  std::string data_;
};

// Blobs in memory, by digest.
class MemoryProvider final : public Provider {
 public:
  errdefs::StatusOr<std::unique_ptr<content::ReaderAt>> reader_at(std::string_view digest) override {
    auto it = blobs_.find(std::string(digest));
    if (it == blobs_.end()) return errdefs::NotFound("content " + std::string(digest));
    return std::unique_ptr<content::ReaderAt>(std::make_unique<StringReader>(it->second));
  }

  Descriptor add(std::string media_type, const std::string& data) {
    Descriptor d{std::move(media_type), digest::Sha256::hex_of(data), static_cast<int64_t>(data.size()), {}};
    d.digest = "sha256:" + d.digest;
    blobs_[d.digest] = data;
    return d;
  }
  // Stores `data` under a digest that is not its own.
  void put(const std::string& digest, std::string data) { blobs_[digest] = std::move(data); }

 private:
  std::map<std::string, std::string> blobs_;
};

json to_json(const Descriptor& d, std::optional<Platform> platform = std::nullopt) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  if (platform) {
    j["platform"] = {{"os", platform->os}, {"architecture", platform->architecture}};
    if (!platform->variant.empty()) j["platform"]["variant"] = platform->variant;
  }
  return j;
}

std::string fake_digest(char c) { return "sha256:" + std::string(64, c); }

// Layer descriptors for blobs that need not exist: resolve never reads layers.
std::vector<Descriptor> fake_layers(size_t count, std::string_view media_type = kMediaTypeOciLayerGzip) {
  std::vector<Descriptor> layers;
  for (size_t i = 0; i < count; ++i) {
    layers.push_back(
        {std::string(media_type), fake_digest(static_cast<char>('a' + i)), 1000 * int64_t(i + 1), {}});
  }
  return layers;
}

std::vector<std::string> diff_ids(size_t count) {
  std::vector<std::string> ids;
  for (size_t i = 0; i < count; ++i) ids.push_back(fake_digest(static_cast<char>('0' + i)));
  return ids;
}

json config_json(const Platform& platform, const std::vector<std::string>& diff_ids) {
  return {{"architecture", platform.architecture},
          {"os", platform.os},
          {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
}

// Stores a config and a manifest over `layers`; returns the manifest's descriptor.
Descriptor add_image(MemoryProvider& provider, const json& config, const std::vector<Descriptor>& layers,
                     std::string_view manifest_type = kMediaTypeOciManifest,
                     std::string_view config_type = kMediaTypeOciConfig) {
  const Descriptor config_desc = provider.add(std::string(config_type), config.dump());
  json manifest = {{"schemaVersion", 2}, {"mediaType", manifest_type}, {"config", to_json(config_desc)}};
  manifest["layers"] = json::array();
  for (const auto& layer : layers) manifest["layers"].push_back(to_json(layer));
  return provider.add(std::string(manifest_type), manifest.dump());
}

// An image for `platform` with two layers.
Descriptor add_platform_image(MemoryProvider& provider, const Platform& platform) {
  return add_image(provider, config_json(platform, diff_ids(2)), fake_layers(2));
}

Descriptor add_index(MemoryProvider& provider,
                     const std::vector<std::pair<Descriptor, std::optional<Platform>>>& entries,
                     std::string_view index_type = kMediaTypeOciIndex) {
  json index = {{"schemaVersion", 2}, {"mediaType", index_type}, {"manifests", json::array()}};
  for (const auto& [d, platform] : entries) index["manifests"].push_back(to_json(d, platform));
  return provider.add(std::string(index_type), index.dump());
}

TEST(ImageResolveTest, ManifestTargetResolvesWithConfigFields) {
  MemoryProvider provider;
  json config = config_json(kAmd64, diff_ids(3));
  config["created"] = "2024-01-02T03:04:05Z";
  config["author"] = "ctrd";
  config["config"] = {
      {"User", "1000:1000"},
      {"Env", {"PATH=/usr/bin:/bin", "HOME=/root"}},
      {"Entrypoint", {"/entry.sh"}},
      {"Cmd", {"serve", "--port", "80"}},
      {"WorkingDir", "/srv"},
      {"Volumes", {{"/data", json::object()}, {"/cache", json::object()}}},
      {"ExposedPorts", {{"80/tcp", json::object()}}},
      {"StopSignal", "SIGQUIT"},
      {"Labels", {{"org.example.name", "demo"}}},
      {"ArgsEscaped", true},  // unknown fields are ignored
  };
  const auto layers = fake_layers(3);
  const Descriptor manifest = add_image(provider, config, layers);

  auto image = resolve(provider, manifest, kAmd64);
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->manifest, manifest);
  EXPECT_EQ(image->config.media_type, kMediaTypeOciConfig);
  EXPECT_EQ(image->config.digest, "sha256:" + digest::Sha256::hex_of(config.dump()));
  EXPECT_EQ(image->layers, layers);
  EXPECT_EQ(image->diff_ids, diff_ids(3));

  const ImageConfig& c = image->config_data;
  EXPECT_EQ(c.created, "2024-01-02T03:04:05Z");
  EXPECT_EQ(c.author, "ctrd");
  EXPECT_EQ(c.os, "linux");
  EXPECT_EQ(c.architecture, "amd64");
  EXPECT_EQ(c.user, "1000:1000");
  EXPECT_EQ(c.env, (std::vector<std::string>{"PATH=/usr/bin:/bin", "HOME=/root"}));
  EXPECT_EQ(c.entrypoint, (std::vector<std::string>{"/entry.sh"}));
  EXPECT_EQ(c.cmd, (std::vector<std::string>{"serve", "--port", "80"}));
  EXPECT_EQ(c.working_dir, "/srv");
  EXPECT_EQ(c.volumes, (std::vector<std::string>{"/cache", "/data"}));
  EXPECT_EQ(c.exposed_ports, (std::vector<std::string>{"80/tcp"}));
  EXPECT_EQ(c.stop_signal, "SIGQUIT");
  EXPECT_EQ(c.labels, (std::map<std::string, std::string>{{"org.example.name", "demo"}}));
  EXPECT_EQ(c.rootfs_type, "layers");
  EXPECT_EQ(c.diff_ids, diff_ids(3));

  // Manifest + config + layers (1000 + 2000 + 3000).
  EXPECT_EQ(image->size, manifest.size + image->config.size + 6000);
}

TEST(ImageResolveTest, NullAndAbsentConfigFieldsAreEmpty) {
  auto config = parse_image_config(R"({"config": {"Entrypoint": null, "Cmd": ["sh"], "Env": null,
      "Labels": {"a": null}}, "rootfs": {"diff_ids": []}})");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_TRUE(config->entrypoint.empty());
  EXPECT_EQ(config->cmd, std::vector<std::string>{"sh"});
  EXPECT_TRUE(config->env.empty());
  EXPECT_EQ(config->labels.at("a"), "");
  EXPECT_TRUE(config->user.empty());
}

TEST(ImageResolveTest, IndexPicksAmd64AmongPlatforms) {
  MemoryProvider provider;
  const Platform arm64{"linux", "arm64", "v8"}, ppc64le{"linux", "ppc64le", ""};
  const Descriptor arm = add_platform_image(provider, arm64);
  const Descriptor amd = add_platform_image(provider, kAmd64);
  const Descriptor ppc = add_platform_image(provider, ppc64le);
  const Descriptor index = add_index(provider, {{arm, arm64}, {amd, kAmd64}, {ppc, ppc64le}});

  auto resolved = resolve_manifest(provider, index, kAmd64);
  ASSERT_TRUE(resolved.ok()) << resolved.status().to_string();
  EXPECT_EQ(resolved->descriptor, amd);
  EXPECT_EQ(resolved->indexes, std::vector<Descriptor>{index});

  auto image = resolve(provider, index, kAmd64);
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->manifest, amd);
  EXPECT_EQ(image->config_data.architecture, "amd64");
  // containerd's Image.Size counts the index as well.
  EXPECT_EQ(image->size, index.size + amd.size + image->config.size + 1000 + 2000);

  auto for_ppc = resolve(provider, index, ppc64le);
  ASSERT_TRUE(for_ppc.ok()) << for_ppc.status().to_string();
  EXPECT_EQ(for_ppc->manifest, ppc);
}

TEST(ImageResolveTest, ArmV7HostPrefersV7ThenV6ThenV5) {
  MemoryProvider provider;
  const Platform v5{"linux", "arm", "v5"}, v6{"linux", "arm", "v6"}, v7{"linux", "arm", "v7"},
      v8{"linux", "arm", "v8"};
  const Descriptor m5 = add_platform_image(provider, v5);
  const Descriptor m6 = add_platform_image(provider, v6);
  const Descriptor m7 = add_platform_image(provider, v7);
  const Descriptor m8 = add_platform_image(provider, v8);

  auto pick = [&](const std::vector<std::pair<Descriptor, std::optional<Platform>>>& entries) {
    return resolve_manifest(provider, add_index(provider, entries), v7);
  };
  auto all = pick({{m5, v5}, {m6, v6}, {m8, v8}, {m7, v7}});
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(all->descriptor, m7);

  auto no_v7 = pick({{m5, v5}, {m8, v8}, {m6, v6}});
  ASSERT_TRUE(no_v7.ok()) << no_v7.status().to_string();
  EXPECT_EQ(no_v7->descriptor, m6);

  auto only_v5 = pick({{m8, v8}, {m5, v5}});
  ASSERT_TRUE(only_v5.ok()) << only_v5.status().to_string();
  EXPECT_EQ(only_v5->descriptor, m5);

  EXPECT_EQ(pick({{m8, v8}}).status().code(), Code::kNotFound);
}

TEST(ImageResolveTest, VariantlessArm64MatchesV8) {
  MemoryProvider provider;
  const Platform arm64{"linux", "arm64", ""}, arm64_v8{"linux", "arm64", "v8"}, arm_v7{"linux", "arm", "v7"};
  const Descriptor plain = add_platform_image(provider, arm64);
  const Descriptor arm32 = add_platform_image(provider, arm_v7);

  // The index states no variant; the host (as uname reports aarch64) says v8.
  const Descriptor index = add_index(provider, {{arm32, arm_v7}, {plain, arm64}});
  auto resolved = resolve_manifest(provider, index, platform_for_machine("aarch64"));
  ASSERT_TRUE(resolved.ok()) << resolved.status().to_string();
  EXPECT_EQ(resolved->descriptor, plain);

  // And the reverse: the index says v8, the host states none.
  const Descriptor index_v8 = add_index(provider, {{arm32, arm_v7}, {plain, arm64_v8}});
  resolved = resolve_manifest(provider, index_v8, arm64);
  ASSERT_TRUE(resolved.ok()) << resolved.status().to_string();
  EXPECT_EQ(resolved->descriptor, plain);

  // With no arm64 entry, an arm64 host falls back to 32-bit arm.
  resolved = resolve_manifest(provider, add_index(provider, {{arm32, arm_v7}}), arm64);
  ASSERT_TRUE(resolved.ok()) << resolved.status().to_string();
  EXPECT_EQ(resolved->descriptor, arm32);
}

TEST(ImageResolveTest, DockerManifestList) {
  MemoryProvider provider;
  const Platform arm64{"linux", "arm64", "v8"};
  const auto layers = fake_layers(2, kMediaTypeDockerLayerGzip);
  const Descriptor amd = add_image(provider, config_json(kAmd64, diff_ids(2)), layers,
                                   kMediaTypeDockerManifest, kMediaTypeDockerConfig);
  const Descriptor arm = add_image(provider, config_json(arm64, diff_ids(2)), layers,
                                   kMediaTypeDockerManifest, kMediaTypeDockerConfig);
  const Descriptor list = add_index(provider, {{arm, arm64}, {amd, kAmd64}}, kMediaTypeDockerManifestList);

  auto image = resolve(provider, list, kAmd64);
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->manifest, amd);
  EXPECT_EQ(image->config.media_type, kMediaTypeDockerConfig);
  EXPECT_EQ(image->layers, layers);
  EXPECT_EQ(image->size, list.size + amd.size + image->config.size + 3000);
}

TEST(ImageResolveTest, MissingPlatformIsNotFound) {
  MemoryProvider provider;
  const Platform arm64{"linux", "arm64", ""}, s390x{"linux", "s390x", ""};
  const Descriptor index = add_index(
      provider, {{add_platform_image(provider, arm64), arm64}, {add_platform_image(provider, s390x), s390x}});
  auto image = resolve(provider, index, kAmd64);
  EXPECT_EQ(image.status().code(), Code::kNotFound);
  EXPECT_NE(image.status().message().find("no match for platform in manifest " + index.digest),
            std::string::npos)
      << image.status().message();

  // An empty index matches nothing either.
  EXPECT_EQ(resolve(provider, add_index(provider, {}), kAmd64).status().code(), Code::kNotFound);
}

TEST(ImageResolveTest, EntryWithoutPlatformIsCheckedAgainstItsConfig) {
  MemoryProvider provider;
  const Platform arm64{"linux", "arm64", ""};
  const Descriptor amd = add_platform_image(provider, kAmd64);
  const Descriptor arm = add_platform_image(provider, arm64);

  auto resolved =
      resolve_manifest(provider, add_index(provider, {{arm, std::nullopt}, {amd, std::nullopt}}), kAmd64);
  // containerd takes the first entry and checks it: an arm64 config is no match.
  EXPECT_EQ(resolved.status().code(), Code::kNotFound);

  resolved = resolve_manifest(provider, add_index(provider, {{amd, std::nullopt}}), kAmd64);
  ASSERT_TRUE(resolved.ok()) << resolved.status().to_string();
  EXPECT_EQ(resolved->descriptor, amd);

  // Entries that state a matching platform come before those that state none.
  const Descriptor other_amd = add_image(provider, config_json(kAmd64, diff_ids(1)), fake_layers(1));
  resolved =
      resolve_manifest(provider, add_index(provider, {{amd, std::nullopt}, {other_amd, kAmd64}}), kAmd64);
  ASSERT_TRUE(resolved.ok()) << resolved.status().to_string();
  EXPECT_EQ(resolved->descriptor, other_amd);
}

TEST(ImageResolveTest, ManifestTargetIgnoresPlatform) {
  MemoryProvider provider;
  const Descriptor arm = add_platform_image(provider, {"linux", "arm64", ""});
  auto image = resolve(provider, arm, kAmd64);
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->config_data.architecture, "arm64");
}

TEST(ImageResolveTest, NestedIndexes) {
  MemoryProvider provider;
  const Descriptor amd = add_platform_image(provider, kAmd64);
  const Descriptor inner = add_index(provider, {{amd, kAmd64}});
  const Descriptor outer = add_index(provider, {{inner, std::nullopt}});
  auto image = resolve(provider, outer, kAmd64);
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->manifest, amd);
  EXPECT_EQ(image->size, outer.size + inner.size + amd.size + image->config.size + 3000);

  Descriptor deep = amd;
  for (int i = 0; i <= kMaxIndexDepth; ++i) deep = add_index(provider, {{deep, kAmd64}});
  EXPECT_EQ(resolve(provider, deep, kAmd64).status().code(), Code::kResourceExhausted);
}

TEST(ImageResolveTest, CorruptDocumentsAreInvalidArgument) {
  MemoryProvider provider;
  const Descriptor not_json = provider.add(std::string(kMediaTypeOciManifest), "{\"config\": ");
  auto image = resolve(provider, not_json, kAmd64);
  EXPECT_EQ(image.status().code(), Code::kInvalidArgument);
  EXPECT_NE(image.status().message().find("not valid JSON"), std::string::npos) << image.status().message();

  const Descriptor bad_index = provider.add(std::string(kMediaTypeOciIndex), "[1, 2]");
  EXPECT_EQ(resolve(provider, bad_index, kAmd64).status().code(), Code::kInvalidArgument);

  // A config that is not JSON.
  const Descriptor bad_config = provider.add(std::string(kMediaTypeOciConfig), "not json");
  json manifest = {{"config", to_json(bad_config)}, {"layers", json::array()}};
  const Descriptor m = provider.add(std::string(kMediaTypeOciManifest), manifest.dump());
  EXPECT_EQ(resolve(provider, m, kAmd64).status().code(), Code::kInvalidArgument);

  // Fields of the wrong type are named.
  json config = config_json(kAmd64, {});
  config["config"] = {{"Cmd", "sh -c true"}};
  const Descriptor string_cmd = add_image(provider, config, {});
  image = resolve(provider, string_cmd, kAmd64);
  EXPECT_EQ(image.status().code(), Code::kInvalidArgument);
  EXPECT_NE(image.status().message().find("config.Cmd: want an array of strings"), std::string::npos)
      << image.status().message();

  auto parsed = parse_manifest(R"({"config": {"digest": "sha256:1", "size": 1}})", kMediaTypeOciManifest);
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  parsed = parse_manifest(R"({"config": {"digest": ")" + fake_digest('c') + R"(", "size": -1}})",
                          kMediaTypeOciManifest);
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  parsed = parse_manifest(R"({"config": {"digest": ")" + fake_digest('c') + R"(", "size": 1.5}})",
                          kMediaTypeOciManifest);
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  parsed = parse_manifest(R"({"layers": []})", kMediaTypeOciManifest);
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_image_config(R"({"rootfs": {"diff_ids": ["sha256:xyz"]}})").status().code(),
            Code::kInvalidArgument);
}

TEST(ImageResolveTest, DocumentsMustBeOfTheirDescriptorsKind) {
  const std::string config = to_json({std::string(kMediaTypeOciConfig), fake_digest('c'), 2, {}}).dump();
  // A manifest posing as an index, and the reverse.
  EXPECT_EQ(parse_index(R"({"config": )" + config + "}", kMediaTypeOciIndex).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      parse_manifest(R"({"manifests": [], "config": )" + config + "}", kMediaTypeOciManifest).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(
      parse_manifest(R"({"mediaType": "application/vnd.oci.image.index.v1+json", "config": )" + config + "}",
                     kMediaTypeOciManifest)
          .status()
          .code(),
      Code::kInvalidArgument);
  // Docker schema 1.
  auto schema1 =
      parse_manifest(R"({"schemaVersion": 1, "fsLayers": [{"blobSum": "x"}]})", kMediaTypeDockerManifest);
  EXPECT_EQ(schema1.status().code(), Code::kInvalidArgument);
  EXPECT_NE(schema1.status().message().find("schema 1"), std::string::npos);
}

TEST(ImageResolveTest, OversizedBlobsAreResourceExhausted) {
  MemoryProvider provider;
  // A manifest just over the cap, padded with an annotation.
  json manifest = {{"config", to_json({std::string(kMediaTypeOciConfig), fake_digest('c'), 2, {}})},
                   {"annotations", {{"pad", std::string(kMaxManifestSize, 'x')}}}};
  const Descriptor big = provider.add(std::string(kMediaTypeOciManifest), manifest.dump());
  ASSERT_GT(big.size, kMaxManifestSize);
  EXPECT_EQ(resolve(provider, big, kAmd64).status().code(), Code::kResourceExhausted);

  // The stored size counts too, whatever the descriptor claims.
  Descriptor understated = big;
  understated.size = 100;
  EXPECT_EQ(resolve(provider, understated, kAmd64).status().code(), Code::kResourceExhausted);

  // The index cap is the manifest cap.
  Descriptor huge_index{std::string(kMediaTypeOciIndex), fake_digest('e'), kMaxManifestSize + 1, {}};
  EXPECT_EQ(resolve(provider, huge_index, kAmd64).status().code(), Code::kResourceExhausted);

  // A config over its own cap.
  json config = config_json(kAmd64, {});
  config["config"] = {{"Labels", {{"pad", std::string(kMaxConfigSize, 'y')}}}};
  const Descriptor big_config_image = add_image(provider, config, {});
  EXPECT_EQ(resolve(provider, big_config_image, kAmd64).status().code(), Code::kResourceExhausted);
}

TEST(ImageResolveTest, DiffIdsMustMatchLayers) {
  MemoryProvider provider;
  const Descriptor manifest = add_image(provider, config_json(kAmd64, diff_ids(2)), fake_layers(3));
  auto image = resolve(provider, manifest, kAmd64);
  EXPECT_EQ(image.status().code(), Code::kInvalidArgument);
  EXPECT_NE(image.status().message().find("2 diff ids for the 3 layers"), std::string::npos)
      << image.status().message();
}

TEST(ImageResolveTest, MediaTypesMustBeKnown) {
  MemoryProvider provider;
  const Descriptor unknown_target = provider.add("application/octet-stream", "{}");
  EXPECT_EQ(resolve(provider, unknown_target, kAmd64).status().code(), Code::kNotFound);

  const Descriptor unknown_layer =
      add_image(provider, config_json(kAmd64, diff_ids(1)), fake_layers(1, "application/x-tar"));
  EXPECT_EQ(resolve(provider, unknown_layer, kAmd64).status().code(), Code::kInvalidArgument);

  const Descriptor unknown_config = add_image(provider, config_json(kAmd64, diff_ids(1)), fake_layers(1),
                                              kMediaTypeOciManifest, "application/json");
  EXPECT_EQ(resolve(provider, unknown_config, kAmd64).status().code(), Code::kInvalidArgument);

  for (auto type : {kMediaTypeOciLayer, kMediaTypeOciLayerGzip, kMediaTypeOciLayerZstd,
                    kMediaTypeOciLayerNonDistributableGzip, kMediaTypeDockerLayer, kMediaTypeDockerLayerGzip,
                    kMediaTypeDockerLayerForeignGzip}) {
    EXPECT_TRUE(is_layer_type(type)) << type;
  }
  EXPECT_TRUE(is_layer_type("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"));
  EXPECT_TRUE(is_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip+encrypted"));
  EXPECT_FALSE(is_layer_type(kMediaTypeOciConfig));
}

TEST(ImageResolveTest, MissingAndDamagedBlobs) {
  MemoryProvider provider;
  // The config blob is absent.
  json manifest = {{"config", to_json({std::string(kMediaTypeOciConfig), fake_digest('c'), 2, {}})}};
  const Descriptor m = provider.add(std::string(kMediaTypeOciManifest), manifest.dump());
  EXPECT_EQ(resolve(provider, m, kAmd64).status().code(), Code::kNotFound);

  // Content that is not what its digest says, of the right size and not.
  Descriptor damaged = add_platform_image(provider, kAmd64);
  damaged.digest = fake_digest('d');
  provider.put(damaged.digest, std::string(static_cast<size_t>(damaged.size), ' '));
  EXPECT_EQ(resolve(provider, damaged, kAmd64).status().code(), Code::kDataLoss);
  provider.put(damaged.digest, "{}");
  EXPECT_EQ(resolve(provider, damaged, kAmd64).status().code(), Code::kDataLoss);

  Descriptor bad_digest = m;
  bad_digest.digest = "sha256:ABC";
  EXPECT_EQ(resolve(provider, bad_digest, kAmd64).status().code(), Code::kInvalidArgument);
}

TEST(ImageResolveTest, SizeOverflowIsAnError) {
  MemoryProvider provider;
  std::vector<Descriptor> layers = fake_layers(2);
  for (auto& layer : layers) layer.size = INT64_MAX;
  const Descriptor m = add_image(provider, config_json(kAmd64, diff_ids(2)), layers);
  EXPECT_EQ(resolve(provider, m, kAmd64).status().code(), Code::kInvalidArgument);
}

// The real local store, through StoreProvider.
TEST(ImageResolveTest, ReadsFromTheLocalContentStore) {
  testing::TempDir dir;
  auto store = content::local::open_store(dir.str());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  MemoryProvider blobs;  // builds the documents and their descriptors
  const Descriptor amd = add_platform_image(blobs, kAmd64);
  const Descriptor index = add_index(
      blobs,
      {{add_platform_image(blobs, {"linux", "arm64", ""}), Platform{"linux", "arm64", ""}}, {amd, kAmd64}});
  // Copy every blob the memory provider holds into the store.
  auto copy = [&](const Descriptor& d) {
    auto reader = blobs.reader_at(d.digest);
    ASSERT_TRUE(reader.ok());
    std::string data(static_cast<size_t>((*reader)->size()), '\0');
    ASSERT_TRUE((*reader)->read_at(data.data(), data.size(), 0).ok());
    auto writer = (*store)->writer({.ref = "ref-" + d.digest});
    ASSERT_TRUE(writer.ok()) << writer.status().to_string();
    ASSERT_TRUE((*writer)->write(data).ok());
    ASSERT_TRUE((*writer)->commit(d.size, d.digest, {}).ok());
  };
  auto index_doc = resolve_manifest(blobs, index, kAmd64);
  ASSERT_TRUE(index_doc.ok());
  copy(index);
  copy(amd);
  copy(index_doc->manifest.config);

  StoreProvider provider(**store);
  auto image = resolve(provider, index, kAmd64);
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->manifest, amd);
  EXPECT_EQ(image->diff_ids, diff_ids(2));
  EXPECT_EQ(image->size, index.size + amd.size + image->config.size + 3000);

  // The arm64 manifest was never copied in.
  EXPECT_EQ(resolve(provider, index, {"linux", "arm64", ""}).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace ctrd::images
