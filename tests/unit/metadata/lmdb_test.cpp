// The RAII layer under the metadata store: transactions abort unless
// committed, readers see a snapshot and never wait for the writer, and read
// transactions are not tied to a thread (MDB_NOTLS).
#include "lmdb/lmdb.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "test_support.h"

namespace ctrd::lmdb {
namespace {

using errdefs::Code;
using errdefs::Status;

class LmdbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = Env::open(dir_.path(), {.map_size = size_t{64} << 20, .max_readers = 64, .max_tables = 4});
    ASSERT_TRUE(env.ok()) << env.status().to_string();
    env_ = std::move(*env);
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn.ok());
    ASSERT_EQ(mdb_dbi_open(txn->get(), "t", MDB_CREATE, &table_), 0);
    ASSERT_TRUE(txn->commit().ok());
  }

  std::optional<std::string> read(std::string_view key) {
    auto txn = Txn::begin_read(*env_);
    EXPECT_TRUE(txn.ok());
    auto value = txn->get(table_, key);
    EXPECT_TRUE(value.ok());
    return value->has_value() ? std::optional<std::string>(**value) : std::nullopt;
  }

  void write(std::string_view key, std::string_view value) {
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->put(table_, key, value).ok());
    ASSERT_TRUE(txn->commit().ok());
  }

  metadata::test_support::TempDir dir_;  // first: removed after the environment closes
  std::unique_ptr<Env> env_;
  MDB_dbi table_ = 0;
};

TEST_F(LmdbTest, UncommittedWriteIsAbortedOnDestruction) {
  {
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->put(table_, "k", "v").ok());
  }
  EXPECT_EQ(read("k"), std::nullopt);
  write("k", "v");
  EXPECT_EQ(read("k"), "v");
}

TEST_F(LmdbTest, ReadersSeeASnapshotAndDoNotBlockTheWriter) {
  write("k", "old");
  auto reader = Txn::begin_read(*env_);
  ASSERT_TRUE(reader.ok());

  // The writer commits on another thread while the read transaction is open.
  auto writer = std::async(std::launch::async, [&] { write("k", "new"); });
  ASSERT_EQ(writer.wait_for(std::chrono::seconds(10)), std::future_status::ready);

  EXPECT_EQ(**reader->get(table_, "k"), "old");
  EXPECT_EQ(read("k"), "new");
}

TEST_F(LmdbTest, ReadTransactionsAreNotTiedToAThread) {
  // Two at once on one thread would fail without MDB_NOTLS.
  auto first = Txn::begin_read(*env_);
  auto second = Txn::begin_read(*env_);
  ASSERT_TRUE(first.ok() && second.ok());
  // Ended on another thread.
  std::thread([txn = std::move(*first)]() mutable { Txn done = std::move(txn); }).join();
}

TEST_F(LmdbTest, PrefixScanAndErase) {
  using namespace std::string_literals;
  for (const std::string& key : {"a\0x"s, "a\0y"s, "ab"s, "b\0z"s}) write(key, "v");
  auto txn = Txn::begin_write(*env_);
  ASSERT_TRUE(txn.ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(txn->scan_prefix(table_, std::string_view("a\0", 2),
                               [&](std::string_view k, std::string_view) {
                                 seen.emplace_back(k);
                                 return Status::Ok();
                               })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{std::string("a\0x", 3), std::string("a\0y", 3)}));
  EXPECT_TRUE(*txn->has_prefix(table_, "b"));
  EXPECT_FALSE(*txn->has_prefix(table_, "c"));
  EXPECT_EQ(*txn->erase_prefix(table_, std::string_view("a\0", 2)), 2u);
  ASSERT_TRUE(txn->commit().ok());
  EXPECT_EQ(read("ab"), "v");
  EXPECT_EQ(read(std::string_view("a\0x", 3)), std::nullopt);
}

TEST_F(LmdbTest, KeysOutsideLmdbLimitsAreHandled) {
  auto txn = Txn::begin_write(*env_);
  ASSERT_TRUE(txn.ok());
  std::string huge(env_->max_key_size() + 1, 'k');
  EXPECT_EQ(txn->put(table_, huge, "v").code(), Code::kInvalidArgument);
  EXPECT_EQ(txn->put(table_, "", "v").code(), Code::kInvalidArgument);
  EXPECT_FALSE(txn->get(table_, huge)->has_value());
  EXPECT_FALSE(*txn->erase(table_, huge));
  EXPECT_TRUE(*txn->put_new(table_, "dup", "1"));
  EXPECT_FALSE(*txn->put_new(table_, "dup", "2"));
  EXPECT_EQ(**txn->get(table_, "dup"), "1");
}

TEST_F(LmdbTest, CommitTwiceIsAnError) {
  auto txn = Txn::begin_write(*env_);
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->commit().ok());
  EXPECT_EQ(txn->commit().code(), Code::kInternal);
}

}  // namespace
}  // namespace ctrd::lmdb
