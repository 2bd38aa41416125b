// The proxy content store against the content front end on a temp socket,
// over a local store: writes (resumed, large, committed twice), reads, info,
// labels, delete and ingest statuses, end to end.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "content/local/store.h"
#include "digest/sha256.h"
#include "fixture.h"
#include "proxy/content.h"

namespace ctrd::proxy {
namespace {

using content::Store;
using errdefs::Code;
using testing::Served;
using testing::TempDir;

std::string digest_of(std::string_view data) { return "sha256:" + digest::Sha256::hex_of(data); }

std::string pattern(size_t size) {
  std::mt19937 gen(7);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(gen());
  return out;
}

class ProxyContentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto local = content::local::open_store(dir_.str() + "/root");
    ASSERT_TRUE(local.ok()) << local.status().message();
    served_ = std::make_unique<Served<Store>>(*local, &content_service, socket());
    ASSERT_TRUE(served_->start().ok());
    conn_ = std::make_shared<Connection>("extcontent", socket());
    client_ = new_content_store(conn_);
  }

  std::string socket() const { return dir_.str() + "/content.sock"; }

  // Writes `data` under `ref` in one writer and commits it.
  errdefs::Status put(const std::string& ref, const std::string& data, const content::Labels& labels = {}) {
    CTRD_ASSIGN_OR_RETURN(auto w, client_->writer({.ref = ref}));
    CTRD_RETURN_IF_ERROR(w->write(data));
    return w->commit(static_cast<int64_t>(data.size()), digest_of(data), labels);
  }

  std::string read_all(const std::string& digest) {
    auto r = client_->reader_at(digest);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return "";
    std::string out(static_cast<size_t>((*r)->size()), '\0');
    auto n = (*r)->read_at(out.data(), out.size(), 0);
    EXPECT_TRUE(n.ok());
    if (!n.ok()) return "";
    out.resize(*n);
    return out;
  }

  TempDir dir_;  // first: removed last
  std::unique_ptr<Served<Store>> served_;
  std::shared_ptr<Connection> conn_;
  std::shared_ptr<Store> client_;
};

TEST_F(ProxyContentTest, WriteReadInfoDelete) {
  const std::string data = "hello, proxy";
  const std::string digest = digest_of(data);
  auto w = client_->writer({.ref = "ref-1", .total = static_cast<int64_t>(data.size())});
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_TRUE((*w)->write(data.substr(0, 5)).ok());
  auto st = client_->status("ref-1");
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->offset, 5);
  EXPECT_EQ(st->total, static_cast<int64_t>(data.size()));
  ASSERT_TRUE((*w)->write(data.substr(5)).ok());
  EXPECT_EQ((*w)->digest(), digest);
  auto ws = (*w)->status();
  ASSERT_TRUE(ws.ok());
  EXPECT_EQ(ws->offset, static_cast<int64_t>(data.size()));
  ASSERT_TRUE((*w)->commit(static_cast<int64_t>(data.size()), digest, {{"k", "v"}}).ok());
  w->reset();

  auto info = client_->info(digest);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->size, static_cast<int64_t>(data.size()));
  EXPECT_EQ(info->digest, digest);
  EXPECT_EQ(read_all(digest), data);

  auto r = client_->reader_at(digest);
  ASSERT_TRUE(r.ok());
  char buf[16] = {};
  auto n = (*r)->read_at(buf, 5, 7);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "proxy");
  n = (*r)->read_at(buf, sizeof buf, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);

  std::vector<std::string> listed;
  ASSERT_TRUE(client_
                  ->walk(
                      [&](const content::Info& i) {
                        listed.push_back(i.digest);
                        return errdefs::Status::Ok();
                      },
                      {})
                  .ok());
  EXPECT_EQ(listed, std::vector<std::string>{digest});

  ASSERT_TRUE(client_->remove(digest).ok());
  EXPECT_EQ(client_->info(digest).status().code(), Code::kNotFound);
  EXPECT_EQ(client_->remove(digest).code(), Code::kNotFound);
  EXPECT_EQ(client_->reader_at(digest).status().code(), Code::kNotFound);
}

TEST_F(ProxyContentTest, LargeBlobCrossesMessageLimits) {
  const std::string data = pattern(5 * (1 << 20) + 123);  // several 1 MiB messages each way
  ASSERT_TRUE(put("big", data).ok());
  EXPECT_EQ(read_all(digest_of(data)), data);
}

TEST_F(ProxyContentTest, ResumesAnIngestAndTruncates) {
  {
    auto w = client_->writer({.ref = "resume"});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->write("abc").ok());
  }  // closed without commit: the ingest stays
  auto statuses = client_->list_statuses({});
  ASSERT_TRUE(statuses.ok());
  ASSERT_EQ(statuses->size(), 1u);
  EXPECT_EQ((*statuses)[0].ref, "resume");

  auto w = client_->writer({.ref = "resume"});
  ASSERT_TRUE(w.ok()) << w.status().message();
  auto st = (*w)->status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->offset, 3);
  ASSERT_TRUE((*w)->truncate(0).ok());
  st = (*w)->status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->offset, 0);
  ASSERT_TRUE((*w)->write("xyz").ok());
  ASSERT_TRUE((*w)->commit(3, digest_of("xyz"), {}).ok());
  EXPECT_TRUE(client_->info(digest_of("xyz")).ok());
}

TEST_F(ProxyContentTest, ErrorsKeepTheirCodes) {
  ASSERT_TRUE(put("one", "same bytes").ok());
  EXPECT_EQ(client_->writer({.ref = "two", .expected = digest_of("same bytes")}).status().code(),
            Code::kAlreadyExists);
  auto w = client_->writer({.ref = "three"});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->write("abc").ok());
  auto bad = (*w)->commit(3, digest_of("not abc"), {});
  EXPECT_EQ(bad.code(), Code::kFailedPrecondition) << bad.message();
  EXPECT_EQ(client_->info("sha256:nothex").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(client_->status("absent").status().code(), Code::kNotFound);

  auto ingest = client_->writer({.ref = "to-abort"});
  ASSERT_TRUE(ingest.ok());
  ingest->reset();
  ASSERT_TRUE(client_->abort("to-abort").ok());
  EXPECT_EQ(client_->status("to-abort").status().code(), Code::kNotFound);
}

TEST_F(ProxyContentTest, UpdateAnswersAsTheBackend) {
  ASSERT_TRUE(put("l", "labelled").ok());
  content::Info in;
  in.digest = digest_of("labelled");
  in.labels = {{"a", "1"}};
  // The local store keeps no labels (the metadata store does) and refuses.
  auto out = client_->update(in, {"labels.a"});
  EXPECT_EQ(out.status().code(), Code::kFailedPrecondition);
}

TEST_F(ProxyContentTest, UnavailableWhileTheServerIsDownThenBack) {
  ASSERT_TRUE(put("x", "still here").ok());
  served_->stop();
  auto down = client_->info(digest_of("still here"));
  EXPECT_EQ(down.status().code(), Code::kUnavailable);
  EXPECT_NE(down.status().message().find(socket()), std::string::npos) << down.status().message();
  EXPECT_EQ(client_->writer({.ref = "y"}).status().code(), Code::kUnavailable);

  ASSERT_TRUE(served_->start().ok());
  testing::await_reconnect(*conn_);
  EXPECT_EQ(read_all(digest_of("still here")), "still here");
}

}  // namespace
}  // namespace ctrd::proxy
