#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "content/content.h"
#include "content/local/store.h"
#include "digest/sha256.h"
#include "support/temp_dir.h"

namespace ctrd::content::local {
namespace {

using digest::Sha256;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using errdefs::Code;

std::string digest_of(std::string_view data) { return "sha256:" + Sha256::hex_of(data); }

std::string hex_of_digest(const std::string& digest) { return digest.substr(std::string("sha256:").size()); }

std::string pattern(size_t size, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(gen());
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

using ctrd::testing::TempDir;

class ContentLocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty()) << "mkdtemp failed";
    root_ = tmp_.path() / "content";
    store_ = open(Options{.lock_wait = 20ms});
    ASSERT_NE(store_, nullptr);
  }

  std::shared_ptr<Store> open(const Options& options) {
    auto store = open_store(root_.string(), options);
    EXPECT_TRUE(store.ok()) << store.status().to_string();
    return store.ok() ? *store : nullptr;
  }

  std::unique_ptr<Writer> open_writer(const std::string& ref, int64_t total = 0,
                                      const std::string& expected = "") {
    auto writer = store_->writer({.ref = ref, .total = total, .expected = expected});
    EXPECT_TRUE(writer.ok()) << writer.status().to_string();
    return writer.ok() ? std::move(writer).value() : nullptr;
  }

  // Writes and commits `data` under `ref`; returns its digest.
  std::string commit_blob(const std::string& ref, const std::string& data) {
    auto writer = open_writer(ref);
    if (!writer) return "";
    EXPECT_TRUE(writer->write(data).ok());
    errdefs::Status committed = writer->commit(static_cast<int64_t>(data.size()), digest_of(data), {});
    EXPECT_TRUE(committed.ok()) << committed.to_string();
    return digest_of(data);
  }

  std::string read_blob(const std::string& digest) {
    auto reader = store_->reader_at(digest);
    if (!reader.ok()) return "<" + reader.status().to_string() + ">";
    std::string out(static_cast<size_t>((*reader)->size()), '\0');
    auto n = (*reader)->read_at(out.data(), out.size(), 0);
    EXPECT_TRUE(n.ok());
    out.resize(n.ok() ? *n : 0);
    return out;
  }

  std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path blobs_dir() const { return root_ / "blobs" / "sha256"; }
  fs::path ingest_dir(const std::string& ref) const { return root_ / "ingest" / Sha256::hex_of(ref); }

  TempDir tmp_;
  fs::path root_;
  std::shared_ptr<Store> store_;
};

TEST_F(ContentLocalStoreTest, OpenCreatesContainerdLayout) {
  EXPECT_TRUE(fs::is_directory(root_ / "ingest"));
  EXPECT_TRUE(fs::is_directory(blobs_dir()));
  EXPECT_EQ(open_store("").status().code(), Code::kInvalidArgument);
}

TEST_F(ContentLocalStoreTest, IngestDirectoryHoldsContainerdFiles) {
  auto writer = open_writer("layer-1", 11);
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("hello").ok());
  const fs::path dir = ingest_dir("layer-1");
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"data", "ref", "startedat", "total", "updatedat"}));
  EXPECT_EQ(read_file(dir / "ref"), "layer-1");
  EXPECT_EQ(read_file(dir / "total"), "11");
  EXPECT_EQ(read_file(dir / "data"), "hello");
}

TEST_F(ContentLocalStoreTest, CommitPublishesReadOnlyBlobAndRemovesIngest) {
  const std::string data = "hello, content store";
  const auto before = Clock::now();
  auto writer = open_writer("ref-a", static_cast<int64_t>(data.size()), digest_of(data));
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write(data.substr(0, 5)).ok());
  ASSERT_TRUE(writer->write(data.substr(5)).ok());
  EXPECT_EQ(writer->digest(), digest_of(data));
  ASSERT_TRUE(writer->commit(static_cast<int64_t>(data.size()), digest_of(data), {{"k", "v"}}).ok());
  const auto after = Clock::now();

  const fs::path blob = blobs_dir() / hex_of_digest(digest_of(data));
  EXPECT_EQ(read_file(blob), data);
  struct stat st {};
  ASSERT_EQ(::stat(blob.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_FALSE(fs::exists(ingest_dir("ref-a")));
  EXPECT_TRUE(names_in(root_ / "ingest").empty());

  auto info = store_->info(digest_of(data));
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  EXPECT_EQ(info->digest, digest_of(data));
  EXPECT_EQ(info->size, static_cast<int64_t>(data.size()));
  EXPECT_GE(info->created_at, before - 1s);  // filesystem timestamps may be coarse
  EXPECT_LE(info->created_at, after + 1s);
  EXPECT_TRUE(info->labels.empty());

  EXPECT_EQ(writer->write("more").code(), Code::kFailedPrecondition);
  EXPECT_EQ(writer->commit(0, "", {}).code(), Code::kFailedPrecondition);
}

TEST_F(ContentLocalStoreTest, CommitWithoutExpectationsUsesComputedDigest) {
  auto writer = open_writer("ref-b");
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("abc").ok());
  ASSERT_TRUE(writer->commit(0, "", {}).ok());
  EXPECT_EQ(read_blob(digest_of("abc")), "abc");
}

TEST_F(ContentLocalStoreTest, EmptyBlobCommits) {
  auto writer = open_writer("empty");
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->digest(), digest_of(""));
  ASSERT_TRUE(writer->commit(0, digest_of(""), {}).ok());
  auto info = store_->info(digest_of(""));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 0);
}

TEST_F(ContentLocalStoreTest, SizeMismatchNamesBothSizesAndPublishesNothing) {
  auto writer = open_writer("ref-size");
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("12345").ok());
  errdefs::Status status = writer->commit(7, "", {});
  EXPECT_EQ(status.code(), Code::kFailedPrecondition);
  EXPECT_NE(status.message().find('5'), std::string::npos) << status.message();
  EXPECT_NE(status.message().find('7'), std::string::npos) << status.message();
  EXPECT_TRUE(names_in(blobs_dir()).empty());
  EXPECT_EQ(read_file(ingest_dir("ref-size") / "data"), "12345");
}

TEST_F(ContentLocalStoreTest, DigestMismatchNamesBothDigestsAndPublishesNothing) {
  auto writer = open_writer("ref-digest");
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("actual").ok());
  const std::string wrong = digest_of("expected");
  errdefs::Status status = writer->commit(0, wrong, {});
  EXPECT_EQ(status.code(), Code::kFailedPrecondition);
  EXPECT_NE(status.message().find(wrong), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(digest_of("actual")), std::string::npos) << status.message();
  EXPECT_TRUE(names_in(blobs_dir()).empty());
  EXPECT_EQ(store_->info(wrong).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->info(digest_of("actual")).status().code(), Code::kNotFound);
}

TEST_F(ContentLocalStoreTest, FailedCommitReleasesRefAndKeepsIngestResumable) {
  auto writer = open_writer("ref-retry");
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("abc").ok());
  ASSERT_EQ(writer->commit(0, digest_of("abd"), {}).code(), Code::kFailedPrecondition);
  EXPECT_EQ(writer->write("x").code(), Code::kFailedPrecondition);

  // The failed writer is closed, so the ref is free again even before it is destroyed.
  auto resumed = open_writer("ref-retry");
  ASSERT_NE(resumed, nullptr);
  auto status = resumed->status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->offset, 3);
  EXPECT_EQ(resumed->digest(), digest_of("abc"));
  ASSERT_TRUE(resumed->write("d").ok());
  EXPECT_TRUE(resumed->commit(4, digest_of("abcd"), {}).ok());
}

TEST_F(ContentLocalStoreTest, CommitOfExistingBlobIsAlreadyExistsAndRemovesIngest) {
  const std::string digest = commit_blob("first", "same bytes");
  auto writer = open_writer("second");
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("same bytes").ok());
  errdefs::Status status = writer->commit(0, "", {});
  EXPECT_EQ(status.code(), Code::kAlreadyExists);
  EXPECT_NE(status.message().find(digest), std::string::npos) << status.message();
  EXPECT_FALSE(fs::exists(ingest_dir("second")));
  EXPECT_EQ(read_blob(digest), "same bytes");
  // The ingest is gone, so the ref starts over.
  auto again = open_writer("second");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->status()->offset, 0);
}

TEST_F(ContentLocalStoreTest, WriterForExistingExpectedDigestIsAlreadyExists) {
  const std::string digest = commit_blob("first", "present");
  auto writer = store_->writer({.ref = "other", .expected = digest});
  EXPECT_EQ(writer.status().code(), Code::kAlreadyExists);
  EXPECT_NE(writer.status().message().find(digest), std::string::npos);
  EXPECT_FALSE(fs::exists(ingest_dir("other")));
}

TEST_F(ContentLocalStoreTest, WriterRejectsBadOptions) {
  EXPECT_EQ(store_->writer({.ref = ""}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->writer({.ref = "r", .total = -1}).status().code(), Code::kInvalidArgument);
  auto bad_expected = store_->writer({.ref = "r", .expected = "sha256:nothex"});
  EXPECT_EQ(bad_expected.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_expected.status().message().find("sha256:nothex"), std::string::npos);
}

TEST_F(ContentLocalStoreTest, RefsMayHoldAnyCharacters) {
  const std::string ref = "../../etc/passwd with spaces/\n";
  auto writer = open_writer(ref);
  ASSERT_NE(writer, nullptr);
  EXPECT_TRUE(fs::exists(ingest_dir(ref) / "data"));
  EXPECT_EQ(names_in(root_ / "ingest").size(), 1u);
}

TEST_F(ContentLocalStoreTest, SecondWriterForOpenRefIsUnavailable) {
  auto first = open_writer("busy");
  ASSERT_NE(first, nullptr);
  auto second = store_->writer({.ref = "busy"});
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find("ref busy locked"), std::string::npos)
      << second.status().message();

  // Other refs are unaffected; a second store object on the same root is not a way around the lock.
  EXPECT_NE(open_writer("idle"), nullptr);
  auto other_store = open(Options{.lock_wait = 0ms});
  ASSERT_NE(other_store, nullptr);
  EXPECT_EQ(other_store->writer({.ref = "busy"}).status().code(), Code::kUnavailable);

  first.reset();
  EXPECT_NE(open_writer("busy"), nullptr);
}

TEST_F(ContentLocalStoreTest, SecondWriterWaitsBrieflyForTheFirstToClose) {
  auto patient = open(Options{.lock_wait = 5s});
  ASSERT_NE(patient, nullptr);
  auto first = open_writer("handover");
  ASSERT_NE(first, nullptr);
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    first.reset();
  });
  auto second = patient->writer({.ref = "handover"});
  closer.join();
  EXPECT_TRUE(second.ok()) << second.status().to_string();
}

TEST_F(ContentLocalStoreTest, ConcurrentWritersForOneRefNeverOverlap) {
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<int> opened{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto writer = store_->writer({.ref = "contended"});
        if (!writer.ok()) {
          EXPECT_EQ(writer.status().code(), Code::kUnavailable);
          continue;
        }
        opened++;
        int now = ++holders;
        int seen = max_holders.load();
        while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
        }
        EXPECT_TRUE((*writer)->write("x").ok());
        holders--;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(max_holders.load(), 1);
  EXPECT_GT(opened.load(), 0);
  auto status = store_->status("contended");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->offset, opened.load());
}

TEST_F(ContentLocalStoreTest, ResumesAfterWriterIsDestroyed) {
  const std::string data = pattern(300000, 1);
  const auto before_start = Clock::now();
  auto first = open_writer("resume", static_cast<int64_t>(data.size()), digest_of(data));
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->write(data.substr(0, 100000)).ok());
  const Status closed_status = *first->status();
  first.reset();

  auto second = open_writer("resume", static_cast<int64_t>(data.size()), digest_of(data));
  ASSERT_NE(second, nullptr);
  auto status = second->status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->ref, "resume");
  EXPECT_EQ(status->offset, 100000);
  EXPECT_EQ(status->total, static_cast<int64_t>(data.size()));
  EXPECT_EQ(status->expected, digest_of(data));
  EXPECT_EQ(status->started_at, closed_status.started_at);
  EXPECT_GE(status->started_at, before_start);
  EXPECT_GE(status->updated_at, closed_status.updated_at);
  EXPECT_EQ(second->digest(), digest_of(data.substr(0, 100000)));

  ASSERT_TRUE(second->write(data.substr(100000)).ok());
  ASSERT_TRUE(second->commit(static_cast<int64_t>(data.size()), digest_of(data), {}).ok());
  EXPECT_EQ(read_blob(digest_of(data)), data);
}

TEST_F(ContentLocalStoreTest, ResumesAcrossStoreRestart) {
  const std::string data = pattern(5000, 2);
  {
    auto writer = open_writer("restart");
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->write(data.substr(0, 1234)).ok());
  }
  store_.reset();
  store_ = open(Options{});
  ASSERT_NE(store_, nullptr);
  auto writer = open_writer("restart");
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->status()->offset, 1234);
  ASSERT_TRUE(writer->write(data.substr(1234)).ok());
  EXPECT_TRUE(writer->commit(5000, digest_of(data), {}).ok());
}

TEST_F(ContentLocalStoreTest, ResumesFromDataSizeWhenMetadataIsLost) {
  {
    auto writer = open_writer("crashed");
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->write("partial").ok());
  }
  fs::remove(ingest_dir("crashed") / "startedat");
  std::ofstream(ingest_dir("crashed") / "updatedat") << "torn";
  auto writer = open_writer("crashed");
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->status()->offset, 7);
  EXPECT_EQ(writer->digest(), digest_of("partial"));
}

TEST_F(ContentLocalStoreTest, IncompleteIngestIsRecreated) {
  fs::create_directories(ingest_dir("half-made"));
  std::ofstream(ingest_dir("half-made") / "ref") << "half-made";
  auto listed = store_->list_statuses({});
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  auto writer = open_writer("half-made", 3);
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->status()->offset, 0);
  EXPECT_EQ(writer->status()->total, 3);
}

TEST_F(ContentLocalStoreTest, DifferentTotalRestartsTheIngest) {
  {
    auto writer = open_writer("retotal", 10);
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->write("0123456789").ok());
  }
  auto writer = open_writer("retotal", 20);
  ASSERT_NE(writer, nullptr);
  auto status = writer->status();
  EXPECT_EQ(status->offset, 0);
  EXPECT_EQ(status->total, 20);
  EXPECT_EQ(writer->digest(), digest_of(""));
  EXPECT_EQ(read_file(ingest_dir("retotal") / "data"), "");
  EXPECT_EQ(read_file(ingest_dir("retotal") / "total"), "20");
}

TEST_F(ContentLocalStoreTest, UnknownTotalKeepsTheStoredOneAndLateTotalIsRecorded) {
  {
    auto writer = open_writer("keep", 10);
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->write("01234").ok());
  }
  {
    auto writer = open_writer("keep", 0);
    ASSERT_NE(writer, nullptr);
    EXPECT_EQ(writer->status()->offset, 5);
    EXPECT_EQ(writer->status()->total, 10);
  }
  {
    auto writer = open_writer("late", 0);
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->write("ab").ok());
  }
  auto writer = open_writer("late", 4);
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->status()->offset, 2);
  EXPECT_EQ(writer->status()->total, 4);
  EXPECT_EQ(store_->status("late")->total, 4);
}

TEST_F(ContentLocalStoreTest, TruncateRestartsOrCutsTheIngest) {
  auto writer = open_writer("trunc");
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("abcdef").ok());
  ASSERT_TRUE(writer->truncate(3).ok());
  EXPECT_EQ(writer->status()->offset, 3);
  EXPECT_EQ(writer->digest(), digest_of("abc"));
  ASSERT_TRUE(writer->truncate(0).ok());
  EXPECT_EQ(writer->status()->offset, 0);
  EXPECT_EQ(writer->digest(), digest_of(""));
  EXPECT_EQ(writer->truncate(1).code(), Code::kInvalidArgument);
  EXPECT_EQ(writer->truncate(-1).code(), Code::kInvalidArgument);
  ASSERT_TRUE(writer->write("xyz").ok());
  ASSERT_TRUE(writer->commit(3, digest_of("xyz"), {}).ok());
  EXPECT_EQ(read_blob(digest_of("xyz")), "xyz");
}

TEST_F(ContentLocalStoreTest, WriterStatusTracksProgress) {
  const auto before = Clock::now();
  auto writer = open_writer("progress", 8, digest_of("12345678"));
  ASSERT_NE(writer, nullptr);
  auto initial = *writer->status();
  EXPECT_EQ(initial.offset, 0);
  EXPECT_EQ(initial.total, 8);
  EXPECT_GE(initial.started_at, before);
  EXPECT_EQ(initial.updated_at, initial.started_at);
  std::this_thread::sleep_for(2ms);
  ASSERT_TRUE(writer->write("1234").ok());
  auto later = *writer->status();
  EXPECT_EQ(later.offset, 4);
  EXPECT_GT(later.updated_at, initial.updated_at);
  EXPECT_EQ(later.started_at, initial.started_at);
}

TEST_F(ContentLocalStoreTest, StoreStatusAndListStatusesReadIngests) {
  auto a = open_writer("alpha", 100);
  auto b = open_writer("beta");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->write("aaaa").ok());
  ASSERT_TRUE(b->write("bb").ok());

  auto status = store_->status("alpha");
  ASSERT_TRUE(status.ok()) << status.status().to_string();
  EXPECT_EQ(status->ref, "alpha");
  EXPECT_EQ(status->offset, 4);
  EXPECT_EQ(status->total, 100);
  EXPECT_GE(status->updated_at, status->started_at);

  auto missing = store_->status("gamma");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("gamma"), std::string::npos);
  EXPECT_EQ(store_->status("").status().code(), Code::kInvalidArgument);

  auto all = store_->list_statuses({});
  ASSERT_TRUE(all.ok());
  std::set<std::string> refs;
  for (const Status& s : *all) refs.insert(s.ref);
  EXPECT_EQ(refs, (std::set<std::string>{"alpha", "beta"}));

  auto filtered = store_->list_statuses({"ref==beta"});
  ASSERT_TRUE(filtered.ok()) << filtered.status().to_string();
  ASSERT_EQ(filtered->size(), 1u);
  EXPECT_EQ((*filtered)[0].ref, "beta");
  EXPECT_EQ((*filtered)[0].offset, 2);

  auto either = store_->list_statuses({"ref==alpha", "ref~=^b"});
  ASSERT_TRUE(either.ok());
  EXPECT_EQ(either->size(), 2u);

  EXPECT_EQ(store_->list_statuses({"ref=="}).status().code(), Code::kInvalidArgument);
}

TEST_F(ContentLocalStoreTest, AbortRemovesIngest) {
  {
    auto writer = open_writer("doomed");
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->write("bytes").ok());
    EXPECT_EQ(store_->abort("doomed").code(), Code::kUnavailable);
    EXPECT_TRUE(fs::exists(ingest_dir("doomed") / "data"));
  }
  ASSERT_TRUE(store_->abort("doomed").ok());
  EXPECT_FALSE(fs::exists(ingest_dir("doomed")));
  EXPECT_EQ(store_->status("doomed").status().code(), Code::kNotFound);

  errdefs::Status again = store_->abort("doomed");
  EXPECT_EQ(again.code(), Code::kNotFound);
  EXPECT_NE(again.message().find("doomed"), std::string::npos);
  EXPECT_EQ(store_->abort("").code(), Code::kInvalidArgument);

  auto fresh = open_writer("doomed");
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->status()->offset, 0);
}

TEST_F(ContentLocalStoreTest, InfoAndRemoveReportMissingAndInvalidDigests) {
  const std::string absent = digest_of("never written");
  auto info = store_->info(absent);
  EXPECT_EQ(info.status().code(), Code::kNotFound);
  EXPECT_NE(info.status().message().find(absent), std::string::npos);
  EXPECT_EQ(store_->info("sha256:../../x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->reader_at(absent).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->reader_at("md5:abc").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->remove(absent).code(), Code::kNotFound);
  EXPECT_EQ(store_->remove("bogus").code(), Code::kInvalidArgument);

  const std::string digest = commit_blob("r", "to be removed");
  ASSERT_TRUE(store_->remove(digest).ok());
  EXPECT_EQ(store_->info(digest).status().code(), Code::kNotFound);
  EXPECT_TRUE(names_in(blobs_dir()).empty());
}

TEST_F(ContentLocalStoreTest, UpdateIsRejectedBecauseTheLocalStoreKeepsNoLabels) {
  const std::string digest = commit_blob("r", "labelled");
  Info info;
  info.digest = digest;
  info.labels = {{"k", "v"}};
  EXPECT_EQ(store_->update(info, {}).status().code(), Code::kFailedPrecondition);
}

TEST_F(ContentLocalStoreTest, ReaderAtReadsAtOffsets) {
  const std::string data = pattern(3 << 20, 3);
  const std::string digest = commit_blob("big", data);
  auto reader = store_->reader_at(digest);
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_EQ((*reader)->size(), static_cast<int64_t>(data.size()));

  for (int64_t offset : {int64_t{0}, int64_t{1}, int64_t{4095}, int64_t{1} << 20, int64_t{(3 << 20) - 10}}) {
    std::string buf(100, '\0');
    auto n = (*reader)->read_at(buf.data(), buf.size(), offset);
    ASSERT_TRUE(n.ok());
    const size_t expected = std::min<size_t>(100, data.size() - static_cast<size_t>(offset));
    EXPECT_EQ(*n, expected) << offset;
    EXPECT_EQ(buf.substr(0, *n), data.substr(static_cast<size_t>(offset), expected)) << offset;
  }
  char byte;
  EXPECT_EQ(*(*reader)->read_at(&byte, 1, static_cast<int64_t>(data.size())), 0u);
  EXPECT_EQ(*(*reader)->read_at(&byte, 1, static_cast<int64_t>(data.size()) + 100), 0u);
  EXPECT_EQ((*reader)->read_at(&byte, 1, -1).status().code(), Code::kInvalidArgument);

  // Reads from many threads share the reader.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string buf(4096, '\0');
      for (int i = 0; i < 200; ++i) {
        int64_t offset =
            (static_cast<int64_t>(t) * 7919 + i * 10007) % static_cast<int64_t>(data.size() - 4096);
        auto n = (*reader)->read_at(buf.data(), buf.size(), offset);
        if (!n.ok() || *n != buf.size() || buf != data.substr(static_cast<size_t>(offset), buf.size())) {
          mismatches++;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);

  // A reader keeps working after the blob is removed.
  ASSERT_TRUE(store_->remove(digest).ok());
  std::string buf(10, '\0');
  EXPECT_EQ(*(*reader)->read_at(buf.data(), buf.size(), 0), 10u);
}

TEST_F(ContentLocalStoreTest, WalkVisitsBlobsAndAppliesFilters) {
  std::set<std::string> digests;
  for (int i = 0; i < 5; ++i)
    digests.insert(commit_blob("w" + std::to_string(i), "blob " + std::to_string(i)));
  {
    auto pending = open_writer("pending");  // ingests are not blobs
    ASSERT_TRUE(pending && pending->write("pending").ok());
  }
  std::ofstream(blobs_dir() / "not-a-digest") << "stray";

  std::set<std::string> seen;
  ASSERT_TRUE(store_
                  ->walk(
                      [&](const Info& info) {
                        seen.insert(info.digest);
                        EXPECT_EQ(info.size, 6);
                        return errdefs::Status::Ok();
                      },
                      {})
                  .ok());
  EXPECT_EQ(seen, digests);

  const std::string one = *digests.begin();
  seen.clear();
  ASSERT_TRUE(store_
                  ->walk(
                      [&](const Info& info) {
                        seen.insert(info.digest);
                        return errdefs::Status::Ok();
                      },
                      {"digest==" + one})
                  .ok());
  EXPECT_EQ(seen, std::set<std::string>{one});

  int count = 0;
  ASSERT_TRUE(store_
                  ->walk(
                      [&](const Info&) {
                        ++count;
                        return errdefs::Status::Ok();
                      },
                      {"size==6"})
                  .ok());
  EXPECT_EQ(count, 5);
  count = 0;
  ASSERT_TRUE(store_
                  ->walk(
                      [&](const Info&) {
                        ++count;
                        return errdefs::Status::Ok();
                      },
                      {"labels.a==b"})
                  .ok());
  EXPECT_EQ(count, 0);

  count = 0;
  errdefs::Status stopped = store_->walk(
      [&](const Info&) {
        ++count;
        return errdefs::Canceled("enough");
      },
      {});
  EXPECT_EQ(stopped.code(), Code::kCanceled);
  EXPECT_EQ(count, 1);

  EXPECT_EQ(store_->walk([](const Info&) { return errdefs::Status::Ok(); }, {"digest=="}).code(),
            Code::kInvalidArgument);
}

TEST_F(ContentLocalStoreTest, ManyThreadsWriteDifferentRefs) {
  constexpr int kThreads = 8;
  constexpr int kBlobsPerThread = 12;
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> written(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlobsPerThread; ++i) {
        const std::string data = pattern(1000 + static_cast<size_t>(t * 997 + i * 131), t * 100 + i);
        auto writer = store_->writer({.ref = "t" + std::to_string(t) + "-" + std::to_string(i),
                                      .total = static_cast<int64_t>(data.size())});
        ASSERT_TRUE(writer.ok()) << writer.status().to_string();
        for (size_t off = 0; off < data.size(); off += 333) {
          ASSERT_TRUE((*writer)->write(std::string_view(data).substr(off, 333)).ok());
        }
        ASSERT_TRUE((*writer)->commit(static_cast<int64_t>(data.size()), digest_of(data), {}).ok());
        written[t].push_back(data);
      }
    });
  }
  for (auto& thread : threads) thread.join();

  int blobs = 0;
  ASSERT_TRUE(store_
                  ->walk(
                      [&](const Info&) {
                        ++blobs;
                        return errdefs::Status::Ok();
                      },
                      {})
                  .ok());
  EXPECT_EQ(blobs, kThreads * kBlobsPerThread);
  for (const auto& per_thread : written) {
    for (const std::string& data : per_thread) EXPECT_EQ(read_blob(digest_of(data)), data);
  }
  EXPECT_TRUE(names_in(root_ / "ingest").empty());
  for (const std::string& name : names_in(blobs_dir())) EXPECT_EQ(name.size(), 64u) << name;
}

// kill -9 in the middle of an ingest: committed blobs survive and the ingest
// resumes from what its data file holds.
TEST_F(ContentLocalStoreTest, SurvivesKillDuringIngest) {
  const std::string committed = pattern(100000, 7);
  const std::string stream = pattern(64 << 20, 8);
  int progress[2];
  ASSERT_EQ(::pipe(progress), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(progress[0]);
    auto store = open_store(root_.string());
    if (!store.ok()) ::_exit(1);
    auto first = (*store)->writer({.ref = "durable"});
    if (!first.ok() || !(*first)->write(committed).ok() ||
        !(*first)->commit(0, digest_of(committed), {}).ok()) {
      ::_exit(2);
    }
    auto writer = (*store)->writer({.ref = "interrupted", .total = static_cast<int64_t>(stream.size())});
    if (!writer.ok()) ::_exit(3);
    for (size_t off = 0;; off = (off + 65536) % stream.size()) {
      if (off == 0 && (*writer)->truncate(0).code() != Code::kOk) ::_exit(4);
      if (!(*writer)->write(std::string_view(stream).substr(off, 65536)).ok()) ::_exit(5);
      if (::write(progress[1], "x", 1) != 1) ::_exit(6);
    }
  }
  ::close(progress[1]);
  char buf[37];
  size_t seen = 0;
  while (seen < sizeof(buf)) {
    ssize_t n = ::read(progress[0], buf, sizeof(buf) - seen);
    ASSERT_GT(n, 0) << "child stopped early";
    seen += static_cast<size_t>(n);
  }
  ::kill(child, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ::close(progress[0]);
  ASSERT_TRUE(WIFSIGNALED(wstatus));

  EXPECT_EQ(read_blob(digest_of(committed)), committed);

  const std::string on_disk = read_file(ingest_dir("interrupted") / "data");
  ASSERT_GT(on_disk.size(), 0u);
  EXPECT_EQ(on_disk, stream.substr(0, on_disk.size()));
  auto writer = open_writer("interrupted", static_cast<int64_t>(stream.size()));
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(writer->status()->offset, static_cast<int64_t>(on_disk.size()));
  EXPECT_EQ(writer->digest(), digest_of(on_disk));
  ASSERT_TRUE(writer->write(std::string_view(stream).substr(on_disk.size())).ok());
  EXPECT_TRUE(writer->commit(static_cast<int64_t>(stream.size()), digest_of(stream), {}).ok());
  for (const std::string& name : names_in(blobs_dir())) EXPECT_EQ(name.size(), 64u) << name;
}

}  // namespace
}  // namespace ctrd::content::local
