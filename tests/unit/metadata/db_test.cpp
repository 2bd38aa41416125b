#include <gtest/gtest.h>
#include <lmdb.h>

#include <thread>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using errdefs::Status;
using test_support::FakeBlobStore;
using test_support::MetadataTest;
using test_support::TempDir;
using test_support::write_blob;

// Writes `version` as the stored schema version, bypassing DB, as a newer
// ctrd would have left it.
void force_schema_version(const std::string& dir, uint64_t version) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 32), 0);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi meta = 0;
  ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  std::string value(8, '\0');
  for (int i = 7; i >= 0; --i, version >>= 8)
    value[static_cast<size_t>(i)] = static_cast<char>(version & 0xff);
  std::string key = "schema_version";
  MDB_val k{key.size(), key.data()};
  MDB_val v{value.size(), value.data()};
  ASSERT_EQ(mdb_put(txn, meta, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

// Overwrites the row `key` of table `table` with `value`, bypassing DB, as a
// damaged file would hold it.
void overwrite_row(const std::string& dir, const char* table, const std::string& key,
                   const std::string& value) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 32), 0);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi = 0;
  ASSERT_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

uint64_t read_schema_version(const std::string& dir) {
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 32);
  uint64_t version = 0;
  if (mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0600) == 0) {
    MDB_txn* txn = nullptr;
    MDB_dbi meta = 0;
    if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0 && mdb_dbi_open(txn, "meta", 0, &meta) == 0) {
      std::string key = "schema_version";
      MDB_val k{key.size(), key.data()};
      MDB_val v{};
      if (mdb_get(txn, meta, &k, &v) == 0 && v.mv_size == 8) {
        for (size_t i = 0; i < 8; ++i)
          version = (version << 8) | static_cast<const unsigned char*>(v.mv_data)[i];
      }
    }
    if (txn != nullptr) mdb_txn_abort(txn);
  }
  mdb_env_close(env);
  return version;
}

TEST(Schema, NewDatabaseRecordsTheCurrentVersion) {
  TempDir dir;
  {
    auto db = DB::open(dir.sub("m"), std::make_shared<FakeBlobStore>());
    ASSERT_TRUE(db.ok()) << db.status().to_string();
  }
  EXPECT_EQ(read_schema_version(dir.sub("m")), kSchemaVersion);
}

TEST(Schema, NewerVersionIsRefusedAndLeftUntouched) {
  TempDir dir;
  auto blobs = std::make_shared<FakeBlobStore>();
  {
    auto db = DB::open(dir.sub("m"), blobs);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    ASSERT_TRUE((*db)->namespaces().create("keep", {}).ok());
  }
  force_schema_version(dir.sub("m"), kSchemaVersion + 1);

  auto db = DB::open(dir.sub("m"), blobs);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kFailedPrecondition);
  const std::string& message = db.status().message();
  EXPECT_NE(message.find("schema version " + std::to_string(kSchemaVersion + 1)), std::string::npos)
      << message;
  EXPECT_NE(message.find("version " + std::to_string(kSchemaVersion)), std::string::npos) << message;
  EXPECT_NE(message.find(dir.sub("m")), std::string::npos) << message;
  EXPECT_EQ(read_schema_version(dir.sub("m")), kSchemaVersion + 1);

  // A refused open releases the directory: a later open of it is judged afresh.
  force_schema_version(dir.sub("m"), kSchemaVersion);
  auto again = DB::open(dir.sub("m"), blobs);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE((*again)->namespaces().get("keep").ok());
}

TEST(Open, CreatesTheDirectory) {
  TempDir dir;
  auto db = DB::open(dir.sub("a/b/c"), std::make_shared<FakeBlobStore>());
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  EXPECT_TRUE(std::filesystem::exists(dir.sub("a/b/c/data.mdb")));
}

TEST(Open, RefusesASecondOpenInTheSameProcess) {
  TempDir dir;
  auto blobs = std::make_shared<FakeBlobStore>();
  auto first = DB::open(dir.sub("m"), blobs);
  ASSERT_TRUE(first.ok());
  auto second = DB::open(dir.sub("m") + "/.", blobs);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kFailedPrecondition);
  first->reset();
  EXPECT_TRUE(DB::open(dir.sub("m"), blobs).ok());
}

TEST(Open, RejectsMissingArguments) {
  TempDir dir;
  EXPECT_EQ(DB::open("", std::make_shared<FakeBlobStore>()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(DB::open(dir.sub("m"), nullptr).status().code(), Code::kInvalidArgument);
}

TEST(Open, HandlesOutliveTheDB) {
  TempDir dir;
  auto blobs = std::make_shared<FakeBlobStore>();
  auto db = DB::open(dir.sub("m"), blobs);
  ASSERT_TRUE(db.ok());
  Namespaces namespaces = (*db)->namespaces();
  auto store = (*db)->content_store("default");
  db->reset();
  EXPECT_TRUE(namespaces.create("still-open", {}).ok());
  EXPECT_TRUE(write_blob(*store, "r", "bytes").ok());
}

TEST_F(MetadataTest, ReopenKeepsEverything) {
  ASSERT_TRUE(db_->namespaces().create("ns1", {{"team", "a"}}).ok());
  auto lease = db_->leases("ns1").create("lease-1", {{"containerd.io/gc.expire", "2030-01-01T00:00:00Z"}});
  ASSERT_TRUE(lease.ok());
  auto store = db_->content_store("ns1", "lease-1");
  ASSERT_TRUE(write_blob(*store, "blob-ref", "committed bytes", {{"k", "v"}}).ok());
  std::string committed = test_support::sha256("committed bytes");
  ASSERT_TRUE(
      db_->leases("ns1").add_resource("lease-1", {"extract-1 sha256:abc", "snapshots/overlayfs"}).ok());
  {
    auto writer = store->writer({"partial", 10, ""});
    ASSERT_TRUE(writer.ok()) << writer.status().to_string();
    ASSERT_TRUE((*writer)->write("01234").ok());
  }
  auto info_before = store->info(committed);
  ASSERT_TRUE(info_before.ok());
  store.reset();

  reopen();

  auto labels = db_->namespaces().get("ns1");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(*labels, (Labels{{"team", "a"}}));
  auto leases = db_->leases("ns1").list();
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].id, "lease-1");
  EXPECT_EQ((*leases)[0].created_at, lease->created_at);
  EXPECT_EQ((*leases)[0].labels.at("containerd.io/gc.expire"), "2030-01-01T00:00:00Z");
  auto resources = db_->leases("ns1").list_resources("lease-1");
  ASSERT_TRUE(resources.ok());
  EXPECT_EQ(*resources, (std::vector<LeaseResource>{{committed, "content"},
                                                    {"partial", "ingests"},
                                                    {"extract-1 sha256:abc", "snapshots/overlayfs"}}));

  store = db_->content_store("ns1", "lease-1");
  auto info = store->info(committed);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 15);
  EXPECT_EQ(info->labels, (Labels{{"k", "v"}}));
  EXPECT_EQ(info->created_at, info_before->created_at);
  EXPECT_EQ(info->updated_at, info_before->updated_at);

  // The ingest resumes where it stopped.
  auto status = store->status("partial");
  ASSERT_TRUE(status.ok()) << status.status().to_string();
  EXPECT_EQ(status->offset, 5);
  auto writer = store->writer({"partial", 10, ""});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write("56789").ok());
  ASSERT_TRUE((*writer)->commit(10, test_support::sha256("0123456789"), {}).ok());
  EXPECT_TRUE(store->info(test_support::sha256("0123456789")).ok());
}

TEST_F(MetadataTest, UndecodableRowsAreDataLossNamingTheRow) {
  Image image{
      "img", {}, {"application/vnd.oci.image.manifest.v1+json", test_support::sha256("m"), 1, {}}, {}, {}};
  ASSERT_TRUE(db_->images("ns").create(image).ok());
  Container container;
  container.id = "c";
  container.runtime.name = "io.containerd.runc.v2";
  container.spec = {"types.containerd.io/opencontainers/runtime-spec/1/Spec", "{}"};
  ASSERT_TRUE(db_->containers("ns").create(container).ok());
  ASSERT_TRUE(db_->leases("ns").create("l", {}).ok());
  ASSERT_TRUE(snapshots("ns")->prepare("k", "", {}).ok());
  db_.reset();
  // A varint cut short: no record's framing accepts it.
  const std::string garbage = "\xff";
  std::string sep(1, '\0');
  overwrite_row(dir_.sub("metadata"), "images", "ns" + sep + "img", garbage);
  overwrite_row(dir_.sub("metadata"), "containers", "ns" + sep + "c", garbage);
  overwrite_row(dir_.sub("metadata"), "leases", "ns" + sep + "l", garbage);
  overwrite_row(dir_.sub("metadata"), "snapshots", "ns" + sep + "fake" + sep + "k", garbage);
  reopen();

  auto expect_data_loss = [](const Status& s, const std::string& message) {
    EXPECT_EQ(s.code(), Code::kDataLoss) << s.to_string();
    EXPECT_EQ(s.message(), message);
  };
  expect_data_loss(db_->images("ns").get("img").status(), "corrupt metadata record for image \"img\"");
  expect_data_loss(db_->images("ns").list().status(), "corrupt metadata record for image \"img\"");
  expect_data_loss(db_->images("ns").update(image, {}).status(), "corrupt metadata record for image \"img\"");
  expect_data_loss(db_->containers("ns").get("c").status(), "corrupt metadata record for container \"c\"");
  expect_data_loss(db_->containers("ns").list().status(), "corrupt metadata record for container \"c\"");
  expect_data_loss(db_->containers("ns").update(container, {}).status(),
                   "corrupt metadata record for container \"c\"");
  expect_data_loss(db_->leases("ns").list().status(), "corrupt metadata record for ns/l");
  auto sn = snapshots("ns");
  expect_data_loss(sn->stat("k").status(), "corrupt metadata record for snapshot \"k\"");
  expect_data_loss(sn->mounts("k").status(), "corrupt metadata record for snapshot \"k\"");
  snapshots::Info info;
  info.name = "k";
  expect_data_loss(sn->update(info, {}).status(), "corrupt metadata record for snapshot \"k\"");
  expect_data_loss(sn->walk([](const snapshots::Info&) { return Status::Ok(); }, {}),
                   "corrupt metadata record for snapshot \"k\"");
  expect_data_loss(sn->remove("k"), "corrupt metadata record for snapshot \"k\"");
  // Removing needs no decoding.
  EXPECT_TRUE(db_->images("ns").remove("img").ok());
  EXPECT_TRUE(db_->containers("ns").remove("c").ok());
  EXPECT_TRUE(db_->leases("ns").remove("l").ok());
}

TEST_F(MetadataTest, ConcurrentReadersAndWriters) {
  constexpr int kWriters = 8;
  constexpr int kBlobsPerWriter = 25;
  constexpr int kReaders = 6;
  std::atomic<bool> writers_done{false};
  std::atomic<int> failures{0};
  std::atomic<long> reads{0};

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::string ns = "ns" + std::to_string(w);
      if (!db_->leases(ns).create("pull", {}).ok()) ++failures;
      auto store = db_->content_store(ns, "pull");
      for (int i = 0; i < kBlobsPerWriter; ++i) {
        // Every writer also writes a blob all of them share, and deletes it
        // again, to race commits against blob removal.
        std::string shared = "shared blob " + std::to_string(i);
        if (!write_blob(*store, "own-" + std::to_string(i), ns + " blob " + std::to_string(i)).ok())
          ++failures;
        Status s = write_blob(*store, "shared-" + std::to_string(i), shared);
        if (!s.ok() && !errdefs::IsAlreadyExists(s)) ++failures;
        if (i % 2 == 0 && !store->remove(test_support::sha256(shared)).ok()) ++failures;
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      while (!writers_done.load()) {
        std::string ns = "ns" + std::to_string(r % kWriters);
        auto namespaces = db_->namespaces().list();
        auto leases = db_->leases(ns).list();
        Status walked = db_->content_store(ns)->walk([](const content::Info&) { return Status::Ok(); }, {});
        if (!namespaces.ok() || !leases.ok() || !walked.ok()) ++failures;
        ++reads;
      }
    });
  }
  // Collections race the commits: a blob a lease just took must survive.
  std::atomic<int> collections{0};
  threads.emplace_back([&] {
    while (!writers_done.load()) {
      if (!db_->garbage_collect().ok()) ++failures;
      ++collections;
    }
  });
  for (int w = 0; w < kWriters; ++w) threads[static_cast<size_t>(w)].join();
  writers_done = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_GT(collections.load(), 0);
  // Removed blobs stay in the blob store until a collection.
  ASSERT_TRUE(db_->garbage_collect().ok());

  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(reads.load(), 0);
  for (int w = 0; w < kWriters; ++w) {
    std::string ns = "ns" + std::to_string(w);
    int count = 0;
    ASSERT_TRUE(db_->content_store(ns)
                    ->walk(
                        [&](const content::Info&) {
                          ++count;
                          return Status::Ok();
                        },
                        {})
                    .ok());
    EXPECT_EQ(count, kBlobsPerWriter + kBlobsPerWriter / 2) << ns;
  }
  // The blob store keeps exactly what some namespace still holds.
  for (int i = 0; i < kBlobsPerWriter; ++i) {
    std::string digest = test_support::sha256("shared blob " + std::to_string(i));
    EXPECT_EQ(blobs_->has_blob(digest), i % 2 == 1) << i;
  }
}

}  // namespace
}  // namespace ctrd::metadata
