#include "spdy/header_block.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace ctrd::spdy {
namespace {

constexpr uint32_t kDictionaryAdler = 0xe3c6a7c2;

// The dictionary's first part, in order; each goes in with its length.
constexpr std::array<std::string_view, 65> kDictionaryWords = {"options",
                                                               "head",
                                                               "post",
                                                               "put",
                                                               "delete",
                                                               "trace",
                                                               "accept",
                                                               "accept-charset",
                                                               "accept-encoding",
                                                               "accept-language",
                                                               "accept-ranges",
                                                               "age",
                                                               "allow",
                                                               "authorization",
                                                               "cache-control",
                                                               "connection",
                                                               "content-base",
                                                               "content-encoding",
                                                               "content-language",
                                                               "content-length",
                                                               "content-location",
                                                               "content-md5",
                                                               "content-range",
                                                               "content-type",
                                                               "date",
                                                               "etag",
                                                               "expect",
                                                               "expires",
                                                               "from",
                                                               "host",
                                                               "if-match",
                                                               "if-modified-since",
                                                               "if-none-match",
                                                               "if-range",
                                                               "if-unmodified-since",
                                                               "last-modified",
                                                               "location",
                                                               "max-forwards",
                                                               "pragma",
                                                               "proxy-authenticate",
                                                               "proxy-authorization",
                                                               "range",
                                                               "referer",
                                                               "retry-after",
                                                               "server",
                                                               "te",
                                                               "trailer",
                                                               "transfer-encoding",
                                                               "upgrade",
                                                               "user-agent",
                                                               "vary",
                                                               "via",
                                                               "warning",
                                                               "www-authenticate",
                                                               "method",
                                                               "get",
                                                               "status",
                                                               "200 OK",
                                                               "version",
                                                               "HTTP/1.1",
                                                               "url",
                                                               "public",
                                                               "set-cookie",
                                                               "keep-alive",
                                                               "origin"};

// Its second part, as one run of text.
constexpr std::string_view kDictionaryTail =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t read_u32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(b[at + 3])};
}

const Bytef* bytes_of(std::string_view s) { return reinterpret_cast<const Bytef*>(s.data()); }

}  // namespace

std::string_view header_value(const HeaderPairs& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::string_view header_dictionary() {
  static const std::string dictionary = [] {
    std::string d;
    for (std::string_view word : kDictionaryWords) {
      put_u32(d, static_cast<uint32_t>(word.size()));
      d.append(word);
    }
    d.append(kDictionaryTail);
    return d;
  }();
  return dictionary;
}

std::string encode_pairs(const HeaderPairs& headers) {
  std::string out;
  put_u32(out, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    put_u32(out, static_cast<uint32_t>(name.size()));
    out.append(name);
    put_u32(out, static_cast<uint32_t>(value.size()));
    out.append(value);
  }
  return out;
}

errdefs::StatusOr<HeaderPairs> decode_pairs(std::string_view block) {
  auto truncated = [] { return errdefs::InvalidArgument("spdy: truncated header block"); };
  if (block.size() < 4) return truncated();
  const uint32_t count = read_u32(block, 0);
  size_t at = 4;
  // Each pair takes at least 8 bytes (two lengths); a larger count lies.
  if (count > (block.size() - at) / 8) return truncated();
  HeaderPairs pairs;
  pairs.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view fields[2];
    for (auto& field : fields) {
      if (block.size() - at < 4) return truncated();
      const uint32_t length = read_u32(block, at);
      at += 4;
      if (block.size() - at < length) return truncated();
      field = block.substr(at, length);
      at += length;
    }
    if (fields[0].empty()) return errdefs::InvalidArgument("spdy: a header with an empty name");
    std::string name(fields[0]);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    pairs.emplace_back(std::move(name), std::string(fields[1]));
  }
  if (at != block.size()) return errdefs::InvalidArgument("spdy: bytes after the header block's last pair");
  return pairs;
}

// ---- HeaderCompressor ----

errdefs::StatusOr<std::unique_ptr<HeaderCompressor>> HeaderCompressor::create() {
  std::unique_ptr<HeaderCompressor> c(new HeaderCompressor());
  // A 2 KiB window (it holds the dictionary) and the smallest state: header
  // blocks are small and a session should cost little memory.
  if (deflateInit2(&c->zs_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 11, 1, Z_DEFAULT_STRATEGY) != Z_OK)
    return errdefs::ResourceExhausted("spdy: zlib deflateInit2 failed");
  const std::string_view dictionary = header_dictionary();
  if (deflateSetDictionary(&c->zs_, bytes_of(dictionary), static_cast<uInt>(dictionary.size())) != Z_OK)
    return errdefs::Internal("spdy: zlib deflateSetDictionary failed");
  return c;
}

HeaderCompressor::~HeaderCompressor() { deflateEnd(&zs_); }

errdefs::StatusOr<std::string> HeaderCompressor::compress(const HeaderPairs& headers) {
  const std::string plain = encode_pairs(headers);
  std::string out;
  zs_.next_in = const_cast<Bytef*>(bytes_of(plain));
  zs_.avail_in = static_cast<uInt>(plain.size());
  do {
    const size_t used = out.size();
    out.resize(used + plain.size() + 64);
    zs_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs_.avail_out = static_cast<uInt>(out.size() - used);
    const int rc = deflate(&zs_, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return errdefs::Internal("spdy: zlib deflate failed");
    out.resize(out.size() - zs_.avail_out);
  } while (zs_.avail_out == 0 || zs_.avail_in > 0);
  return out;
}

// ---- HeaderDecompressor ----

errdefs::StatusOr<std::unique_ptr<HeaderDecompressor>> HeaderDecompressor::create(size_t max_decoded_size) {
  std::unique_ptr<HeaderDecompressor> d(new HeaderDecompressor(max_decoded_size));
  if (inflateInit(&d->zs_) != Z_OK) return errdefs::ResourceExhausted("spdy: zlib inflateInit failed");
  return d;
}

HeaderDecompressor::~HeaderDecompressor() { inflateEnd(&zs_); }

errdefs::StatusOr<HeaderPairs> HeaderDecompressor::decompress(std::string_view block) {
  std::string plain;
  zs_.next_in = const_cast<Bytef*>(bytes_of(block));
  zs_.avail_in = static_cast<uInt>(block.size());
  constexpr size_t kChunk = 4096;
  while (true) {
    if (plain.size() >= max_decoded_size_)
      return errdefs::ResourceExhausted("spdy: a header block inflating past " +
                                        std::to_string(max_decoded_size_) + " bytes");
    const size_t used = plain.size();
    plain.resize(used + std::min(kChunk, max_decoded_size_ - used));
    zs_.next_out = reinterpret_cast<Bytef*>(plain.data() + used);
    zs_.avail_out = static_cast<uInt>(plain.size() - used);
    int rc = inflate(&zs_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      if (zs_.adler != kDictionaryAdler)
        return errdefs::InvalidArgument("spdy: a header block compressed with an unknown dictionary");
      const std::string_view dictionary = header_dictionary();
      if (inflateSetDictionary(&zs_, bytes_of(dictionary), static_cast<uInt>(dictionary.size())) != Z_OK)
        return errdefs::Internal("spdy: zlib inflateSetDictionary failed");
      rc = inflate(&zs_, Z_SYNC_FLUSH);
    }
    plain.resize(plain.size() - zs_.avail_out);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs_.avail_in == 0) break;  // all input used, no progress possible
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      return errdefs::InvalidArgument(std::string("spdy: a header block that does not inflate: ") +
                                      (zs_.msg != nullptr ? zs_.msg : "zlib error " + std::to_string(rc)));
    if (zs_.avail_in == 0 && zs_.avail_out != 0) break;
  }
  return decode_pairs(plain);
}

}  // namespace ctrd::spdy
