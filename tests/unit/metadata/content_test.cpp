#include <gtest/gtest.h>

#include <thread>

#include "metadata/db.h"
#include "test_support.h"

namespace ctrd::metadata {
namespace {

using errdefs::Code;
using errdefs::Status;
using test_support::MetadataTest;
using test_support::read_all;
using test_support::sha256;
using test_support::write_blob;

class ContentTest : public MetadataTest {
 protected:
  std::vector<content::Info> walk(content::Store& store, const std::vector<std::string>& filters = {}) {
    std::vector<content::Info> out;
    Status s = store.walk(
        [&](const content::Info& info) {
          out.push_back(info);
          return Status::Ok();
        },
        filters);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }
  std::vector<std::string> digests(content::Store& store, const std::vector<std::string>& filters = {}) {
    std::vector<std::string> out;
    for (const auto& info : walk(store, filters)) out.push_back(info.digest);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<LeaseResource> resources(const std::string& ns, const std::string& lease) {
    auto r = db_->leases(ns).list_resources(lease);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : std::vector<LeaseResource>{};
  }
};

TEST_F(ContentTest, BlobsAreVisibleOnlyInTheNamespaceHoldingThem) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  auto before = content::Clock::now();
  ASSERT_TRUE(write_blob(*ns1, "ref", "hello", {{"a", "1"}}).ok());
  std::string d = sha256("hello");

  auto info = ns1->info(d);
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  EXPECT_EQ(info->digest, d);
  EXPECT_EQ(info->size, 5);
  EXPECT_EQ(info->labels, (Labels{{"a", "1"}}));
  EXPECT_GE(info->created_at, before);
  EXPECT_EQ(info->created_at, info->updated_at);
  EXPECT_EQ(read_all(*ns1, d), "hello");

  auto other = ns2->info(d);
  EXPECT_EQ(other.status().code(), Code::kNotFound);
  EXPECT_EQ(other.status().message(), "content digest " + d + ": not found");
  EXPECT_EQ(ns2->reader_at(d).status().code(), Code::kNotFound);
  EXPECT_TRUE(walk(*ns2).empty());
  EXPECT_EQ(ns2->update({d, 0, {}, {}, {{"x", "y"}}}, {}).status().code(), Code::kNotFound);
  EXPECT_EQ(ns2->remove(d).code(), Code::kNotFound);
  EXPECT_TRUE(blobs_->has_blob(d));
}

TEST_F(ContentTest, KnownBlobIsSharedWithoutCopying) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  ASSERT_TRUE(write_blob(*ns1, "ref", "shared bytes", {{"owner", "ns1"}}).ok());
  std::string d = sha256("shared bytes");
  size_t backend_writers = blobs_->writer_refs().size();

  auto writer = ns2->writer({"ref", 12, d});
  ASSERT_TRUE(writer.ok()) << writer.status().to_string();
  auto status = (*writer)->status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->ref, "ref");
  EXPECT_EQ(status->offset, 12);
  EXPECT_EQ(status->total, 12);
  EXPECT_EQ(status->expected, d);
  EXPECT_EQ((*writer)->digest(), d);
  EXPECT_EQ(ns2->info(d).status().code(), Code::kNotFound) << "visible only once committed";

  ASSERT_TRUE((*writer)->commit(12, d, {{"owner", "ns2"}}).ok());
  EXPECT_EQ(blobs_->writer_refs().size(), backend_writers) << "no bytes were copied";
  EXPECT_EQ(ns2->info(d)->labels, (Labels{{"owner", "ns2"}}));
  EXPECT_EQ(ns1->info(d)->labels, (Labels{{"owner", "ns1"}}));
  EXPECT_EQ(read_all(*ns2, d), "shared bytes");
  EXPECT_TRUE(ns2->list_statuses({})->empty());
}

TEST_F(ContentTest, SharedWriterChecksCommitArguments) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  ASSERT_TRUE(write_blob(*ns1, "ref", "abc").ok());
  std::string d = sha256("abc");
  auto writer = ns2->writer({"ref", 0, d});
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->status()->total, 3) << "size taken from the blob store";
  EXPECT_EQ((*writer)->commit(4, d, {}).code(), Code::kFailedPrecondition);
  EXPECT_EQ((*writer)->commit(3, sha256("other"), {}).code(), Code::kFailedPrecondition);
  EXPECT_TRUE((*writer)->commit(0, "", {}).ok());
  EXPECT_EQ((*writer)->write("more").code(), Code::kFailedPrecondition) << "committed writers are done";
}

TEST_F(ContentTest, WrongExpectedSizeIsNotShared) {
  auto ns1 = db_->content_store("ns1");
  ASSERT_TRUE(write_blob(*ns1, "ref", "abc").ok());
  auto writer = db_->content_store("ns2")->writer({"ref", 99, sha256("abc")});
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->status()->offset, 0);
}

TEST_F(ContentTest, AppendingToASharedBlobCopiesItFirst) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  ASSERT_TRUE(write_blob(*ns1, "ref", "base").ok());
  std::string d = sha256("base");
  std::string d2 = sha256("base+more");

  auto writer = ns2->writer({"ref", 4, d});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write("+more").ok());
  EXPECT_EQ((*writer)->status()->offset, 9);
  ASSERT_TRUE((*writer)->commit(9, d2, {}).ok());
  EXPECT_EQ(digests(*ns2), (std::vector<std::string>{d2}));
  EXPECT_EQ(read_all(*ns2, d2), "base+more");
  EXPECT_EQ(ns2->info(d).status().code(), Code::kNotFound);
}

TEST_F(ContentTest, TruncatingASharedWriterRestartsFromItsBytes) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  ASSERT_TRUE(write_blob(*ns1, "ref", "keep-drop").ok());
  auto writer = ns2->writer({"ref", 0, sha256("keep-drop")});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->truncate(4).ok());
  ASSERT_TRUE((*writer)->write("!").ok());
  ASSERT_TRUE((*writer)->commit(5, sha256("keep!"), {}).ok());
  EXPECT_EQ(read_all(*ns2, sha256("keep!")), "keep!");
}

TEST_F(ContentTest, ExpectedBlobAlreadyInNamespaceIsAlreadyExists) {
  auto ns1 = db_->content_store("ns1");
  ASSERT_TRUE(write_blob(*ns1, "ref", "dup").ok());
  std::string d = sha256("dup");
  auto writer = ns1->writer({"ref-2", 3, d});
  EXPECT_EQ(writer.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(writer.status().message(), "content " + d + ": already exists");
  EXPECT_TRUE(ns1->list_statuses({})->empty()) << "no ingest is left behind";

  // Without an expected digest the bytes are written, and commit reports it.
  Status again = write_blob(*ns1, "ref-3", "dup", {}, /*with_expected=*/false);
  EXPECT_EQ(again.code(), Code::kAlreadyExists);
  EXPECT_EQ(ns1->status("ref-3").status().code(), Code::kNotFound) << "the ingest is gone";
}

TEST_F(ContentTest, WritingBytesAnotherNamespaceHoldsIsNotAlreadyExists) {
  ASSERT_TRUE(write_blob(*db_->content_store("ns1"), "ref", "same").ok());
  auto ns2 = db_->content_store("ns2");
  ASSERT_TRUE(write_blob(*ns2, "ref", "same", {}, /*with_expected=*/false).ok());
  EXPECT_TRUE(ns2->info(sha256("same")).ok());
}

TEST_F(ContentTest, FailedCommitKeepsTheIngest) {
  auto ns = db_->content_store("ns");
  auto writer = ns->writer({"ref", 0, ""});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write("abc").ok());
  EXPECT_EQ((*writer)->commit(4, "", {}).code(), Code::kFailedPrecondition);
  EXPECT_EQ((*writer)->commit(3, sha256("xyz"), {}).code(), Code::kFailedPrecondition);
  EXPECT_EQ(ns->status("ref")->offset, 3);
  EXPECT_TRUE((*writer)->commit(3, sha256("abc"), {}).ok());
}

TEST_F(ContentTest, CommitValidatesLabels) {
  auto ns = db_->content_store("ns");
  auto writer = ns->writer({"ref", 0, ""});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write("abc").ok());
  Status s = (*writer)->commit(3, "", {{"k", std::string(5000, 'v')}});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(s.message().starts_with("info.Labels: ")) << s.message();
  ASSERT_TRUE((*writer)->commit(3, "", {{"k", "v"}, {"empty", ""}}).ok());
  EXPECT_EQ(ns->info(sha256("abc"))->labels, (Labels{{"k", "v"}}));
}

TEST_F(ContentTest, UpdateLabelsWithFieldMasks) {
  auto ns = db_->content_store("ns");
  ASSERT_TRUE(write_blob(*ns, "ref", "blob", {{"a", "1"}, {"b", "2"}, {"c", "3"}}).ok());
  std::string d = sha256("blob");
  auto created = ns->info(d)->created_at;

  auto updated = ns->update({d, 999, {}, {}, {{"a", "10"}, {"new", "n"}, {"ignored", "x"}}},
                            {"labels.a", "labels.b", "labels.new"});
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  EXPECT_EQ(updated->labels, (Labels{{"a", "10"}, {"c", "3"}, {"new", "n"}}));
  EXPECT_EQ(updated->size, 4) << "only labels change";
  EXPECT_EQ(updated->created_at, created);
  EXPECT_GE(updated->updated_at, created);
  EXPECT_EQ(ns->info(d)->labels, updated->labels);

  ASSERT_TRUE(ns->update({d, 0, {}, {}, {{"only", "1"}}}, {"labels"}).ok());
  EXPECT_EQ(ns->info(d)->labels, (Labels{{"only", "1"}}));
  ASSERT_TRUE(ns->update({d, 0, {}, {}, {{"all", "2"}}}, {}).ok());
  EXPECT_EQ(ns->info(d)->labels, (Labels{{"all", "2"}}));

  auto bad = ns->update({d, 0, {}, {}, {}}, {"size"});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "cannot update \"size\" field on content info \"" + d + "\"");
  EXPECT_EQ(ns->update({d, 0, {}, {}, {{"k", std::string(4096, 'v')}}}, {}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ns->info(d)->labels, (Labels{{"all", "2"}}));
}

TEST_F(ContentTest, WalkFilters) {
  auto ns = db_->content_store("ns");
  ASSERT_TRUE(write_blob(*ns, "1", "one", {{"kind", "layer"}, {"a.b", "dotted"}}).ok());
  ASSERT_TRUE(write_blob(*ns, "2", "second", {{"kind", "config"}}).ok());
  ASSERT_TRUE(write_blob(*ns, "3", "third!").ok());
  std::string one = sha256("one"), two = sha256("second"), three = sha256("third!");

  EXPECT_EQ(digests(*ns).size(), 3u);
  EXPECT_EQ(digests(*ns, {"labels.kind==layer"}), (std::vector<std::string>{one}));
  EXPECT_EQ(digests(*ns, {"labels.kind"}).size(), 2u);
  EXPECT_EQ(digests(*ns, {"digest==" + two}), (std::vector<std::string>{two}));
  EXPECT_EQ(digests(*ns, {"labels.\"a.b\"==dotted"}), (std::vector<std::string>{one}));
  auto six = digests(*ns, {"size==6"});
  auto expected_six = std::vector<std::string>{two, three};
  std::sort(expected_six.begin(), expected_six.end());
  EXPECT_EQ(six, expected_six);
  auto any = digests(*ns, {"labels.kind==config", "size==3"});
  auto expected_any = std::vector<std::string>{one, two};
  std::sort(expected_any.begin(), expected_any.end());
  EXPECT_EQ(any, expected_any);
  EXPECT_EQ(ns->walk([](const content::Info&) { return Status::Ok(); }, {"labels.kind=="}).code(),
            Code::kInvalidArgument);

  int calls = 0;
  Status stopped = ns->walk(
      [&](const content::Info&) {
        ++calls;
        return errdefs::Canceled("enough");
      },
      {});
  EXPECT_EQ(stopped.code(), Code::kCanceled);
  EXPECT_EQ(calls, 1);
}

TEST_F(ContentTest, CollectionRemovesTheBlobWhenNoNamespaceHoldsIt) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  ASSERT_TRUE(write_blob(*ns1, "ref", "both").ok());
  ASSERT_TRUE(write_blob(*ns2, "ref", "both").ok());
  std::string d = sha256("both");

  ASSERT_TRUE(ns1->remove(d).ok());
  EXPECT_EQ(ns1->info(d).status().code(), Code::kNotFound);
  EXPECT_TRUE(blobs_->has_blob(d)) << "ns2 still holds it";
  EXPECT_EQ(read_all(*ns2, d), "both");

  ASSERT_TRUE(ns2->remove(d).ok());
  EXPECT_TRUE(blobs_->has_blob(d)) << "the collector removes the bytes";
  auto stats = db_->garbage_collect();
  ASSERT_TRUE(stats.ok()) << stats.status().to_string();
  EXPECT_EQ(stats->blobs_removed, 1u);
  EXPECT_FALSE(blobs_->has_blob(d));
  EXPECT_EQ(blobs_->removals(), 1);
  Status again = ns2->remove(d);
  EXPECT_EQ(again.code(), Code::kNotFound);
  EXPECT_EQ(again.message(), "content digest " + d + ": not found");
}

TEST_F(ContentTest, SharedIngestKeepsTheBlobUntilItEnds) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  ASSERT_TRUE(write_blob(*ns1, "ref", "pinned").ok());
  std::string d = sha256("pinned");

  // Committed after the only holder let go.
  auto writer = ns2->writer({"ref", 6, d});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(ns1->remove(d).ok());
  ASSERT_TRUE(db_->garbage_collect().ok());
  EXPECT_TRUE(blobs_->has_blob(d));
  ASSERT_TRUE((*writer)->commit(6, d, {}).ok());
  EXPECT_EQ(read_all(*ns2, d), "pinned");

  // Aborted after the only holder let go.
  auto ns3 = db_->content_store("ns3");
  auto shared = ns3->writer({"ref", 6, d});
  ASSERT_TRUE(shared.ok());
  ASSERT_TRUE(ns2->remove(d).ok());
  ASSERT_TRUE(db_->garbage_collect().ok());
  EXPECT_TRUE(blobs_->has_blob(d));
  ASSERT_TRUE(ns3->abort("ref").ok());
  ASSERT_TRUE(db_->garbage_collect().ok());
  EXPECT_FALSE(blobs_->has_blob(d));
}

TEST_F(ContentTest, IngestRefsArePerNamespace) {
  auto ns1 = db_->content_store("ns1");
  auto ns2 = db_->content_store("ns2");
  auto w1 = ns1->writer({"same", 0, ""});
  auto w2 = ns2->writer({"same", 0, ""});
  ASSERT_TRUE(w1.ok() && w2.ok());
  ASSERT_TRUE((*w1)->write("one").ok());
  ASSERT_TRUE((*w2)->write("second").ok());
  EXPECT_EQ(blobs_->ingest_refs().size(), 2u);
  for (const auto& ref : blobs_->ingest_refs()) EXPECT_NE(ref, "same");

  auto s1 = ns1->status("same");
  ASSERT_TRUE(s1.ok()) << s1.status().to_string();
  EXPECT_EQ(s1->ref, "same");
  EXPECT_EQ(s1->offset, 3);
  EXPECT_EQ(ns2->status("same")->offset, 6);
  EXPECT_EQ(db_->content_store("ns3")->status("same").status().code(), Code::kNotFound);

  auto list = ns1->list_statuses({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].ref, "same");
  EXPECT_EQ((*list)[0].offset, 3);

  ASSERT_TRUE(ns1->abort("same").ok());
  EXPECT_EQ(ns1->status("same").status().code(), Code::kNotFound);
  EXPECT_EQ(ns2->status("same")->offset, 6);
  EXPECT_EQ(blobs_->ingest_refs().size(), 1u);
  Status missing = ns1->abort("same");
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_EQ(missing.message(), "reference same: not found");

  w1->reset();
  auto reopened = ns1->writer({"same", 0, ""});
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->status()->offset, 0) << "an aborted ref starts over";
}

TEST_F(ContentTest, ListStatusesFiltersByRef) {
  auto ns = db_->content_store("ns");
  std::vector<std::unique_ptr<content::Writer>> writers;
  for (const char* ref : {"layer-1", "layer-2", "config"}) {
    auto w = ns->writer({ref, 0, ""});
    ASSERT_TRUE(w.ok());
    writers.push_back(std::move(*w));
  }
  auto all = ns->list_statuses({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].ref, "config");
  auto layers = ns->list_statuses({"ref~=^layer-"});
  ASSERT_TRUE(layers.ok());
  EXPECT_EQ(layers->size(), 2u);
  EXPECT_EQ(ns->list_statuses({"ref=="}).status().code(), Code::kInvalidArgument);
}

TEST_F(ContentTest, BoundLeaseHoldsIngestsThenContent) {
  ASSERT_TRUE(db_->leases("ns").create("pull", {}).ok());
  auto leased = db_->content_store("ns", "pull");
  std::string d = sha256("layer");

  auto writer = leased->writer({"layer-ref", 5, d});
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(resources("ns", "pull"), (std::vector<LeaseResource>{{"layer-ref", "ingests"}}));
  ASSERT_TRUE((*writer)->write("layer").ok());
  ASSERT_TRUE((*writer)->commit(5, d, {}).ok());
  EXPECT_EQ(resources("ns", "pull"), (std::vector<LeaseResource>{{d, "content"}}));

  // AlreadyExists still puts the blob under a new lease.
  ASSERT_TRUE(db_->leases("ns").create("second", {}).ok());
  EXPECT_EQ(db_->content_store("ns", "second")->writer({"again", 5, d}).status().code(),
            Code::kAlreadyExists);
  EXPECT_EQ(resources("ns", "second"), (std::vector<LeaseResource>{{d, "content"}}));

  // Removing through a lease-bound view drops it from that lease only.
  ASSERT_TRUE(db_->content_store("ns", "second")->remove(d).ok());
  EXPECT_TRUE(resources("ns", "second").empty());
  EXPECT_EQ(resources("ns", "pull"), (std::vector<LeaseResource>{{d, "content"}}));

  // Aborting drops the ingest from the lease.
  auto aborted = leased->writer({"tmp", 0, ""});
  ASSERT_TRUE(aborted.ok());
  ASSERT_TRUE(leased->abort("tmp").ok());
  EXPECT_EQ(resources("ns", "pull"), (std::vector<LeaseResource>{{d, "content"}}));
}

TEST_F(ContentTest, RefusedBackendWriterLeavesNoIngest) {
  ASSERT_TRUE(db_->leases("ns").create("l", {}).ok());
  auto store = db_->content_store("ns", "l");
  blobs_->refuse_writers(errdefs::Unavailable("ref locked"));
  EXPECT_EQ(store->writer({"ref", 0, ""}).status().code(), Code::kUnavailable);
  EXPECT_EQ(store->status("ref").status().code(), Code::kNotFound);
  EXPECT_EQ(store->abort("ref").code(), Code::kNotFound);
  EXPECT_TRUE(resources("ns", "l").empty());

  // A resumed ingest keeps its record when the blob store is busy.
  blobs_->refuse_writers(Status::Ok());
  {
    auto writer = store->writer({"ref", 0, ""});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->write("abc").ok());
  }
  blobs_->refuse_writers(errdefs::Unavailable("ref locked"));
  EXPECT_EQ(store->writer({"ref", 0, ""}).status().code(), Code::kUnavailable);
  EXPECT_EQ(store->status("ref")->offset, 3);
}

TEST_F(ContentTest, CommitCanBeRetriedAfterTheRecordFailed) {
  ASSERT_TRUE(db_->leases("ns").create("l", {}).ok());
  auto store = db_->content_store("ns", "l");
  auto writer = store->writer({"ref", 0, ""});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->write("retry").ok());
  ASSERT_TRUE(db_->leases("ns").remove("l").ok());

  Status failed = (*writer)->commit(5, sha256("retry"), {});
  EXPECT_EQ(failed.code(), Code::kNotFound);
  EXPECT_EQ(store->info(sha256("retry")).status().code(), Code::kNotFound);
  EXPECT_TRUE(blobs_->has_blob(sha256("retry"))) << "the blob store committed";

  ASSERT_TRUE(db_->leases("ns").create("l", {}).ok());
  EXPECT_EQ((*writer)->commit(6, "", {}).code(), Code::kFailedPrecondition) << "arguments still checked";
  ASSERT_TRUE((*writer)->commit(5, sha256("retry"), {{"k", "v"}}).ok());
  EXPECT_EQ(store->info(sha256("retry"))->labels, (Labels{{"k", "v"}}));
  EXPECT_EQ(resources("ns", "l"), (std::vector<LeaseResource>{{sha256("retry"), "content"}}));
}

TEST_F(ContentTest, MissingLeaseIsNotFound) {
  auto store = db_->content_store("ns", "no-such-lease");
  auto writer = store->writer({"ref", 0, ""});
  EXPECT_EQ(writer.status().code(), Code::kNotFound);
  EXPECT_TRUE(db_->content_store("ns")->list_statuses({})->empty()) << "nothing half-written";
}

TEST_F(ContentTest, NamespaceAndArgumentsAreValidated) {
  auto none = db_->content_store("");
  EXPECT_EQ(none->writer({"ref", 0, ""}).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(none->walk([](const content::Info&) { return Status::Ok(); }, {}).code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(none->list_statuses({}).status().message(), "namespace is required");
  auto bad = db_->content_store("bad/ns");
  Status s = bad->abort("ref");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(s.message().starts_with("namespace validation: identifier \"bad/ns\"")) << s.message();

  auto ns = db_->content_store("ns");
  EXPECT_EQ(ns->info("sha256:nothex").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ns->writer({"", 0, ""}).status().message(), "ref must not be empty");
  EXPECT_EQ(ns->writer({"ref", 0, "md5:abc"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ns->writer({std::string(1000, 'r'), 0, ""}).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(db_->namespaces().list()->empty()) << "rejected calls create nothing";
}

TEST_F(ContentTest, ConcurrentWritersOfOneBlobInOneNamespace) {
  auto ns = db_->content_store("ns");
  std::atomic<int> ok{0}, exists{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      Status s = write_blob(*ns, "ref-" + std::to_string(i), "contended", {}, /*with_expected=*/i % 2 == 0);
      if (s.ok()) {
        ++ok;
      } else if (errdefs::IsAlreadyExists(s)) {
        ++exists;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), 7);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(read_all(*ns, sha256("contended")), "contended");
}

}  // namespace
}  // namespace ctrd::metadata
