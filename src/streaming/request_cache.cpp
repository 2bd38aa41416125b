#include "streaming/request_cache.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace ctrd::streaming {
namespace {

constexpr char kUrlSafe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// 8 random bytes as unpadded base64url, as the kubelet's streaming server.
errdefs::StatusOr<std::string> random_token() {
  unsigned char bytes[8];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errdefs::Internal(std::string("getrandom: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  std::string token;
  uint32_t bits = 0;
  int nbits = 0;
  for (unsigned char b : bytes) {
    bits = (bits << 8) | b;
    nbits += 8;
    while (nbits >= 6) {
      nbits -= 6;
      token.push_back(kUrlSafe[(bits >> nbits) & 0x3f]);
    }
  }
  if (nbits > 0) token.push_back(kUrlSafe[(bits << (6 - nbits)) & 0x3f]);
  return token;
}

}  // namespace

RequestCache::RequestCache(Options options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return std::chrono::steady_clock::now(); };
}

void RequestCache::evict_expired_locked(std::chrono::steady_clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();)
    it = it->second.expires <= now ? entries_.erase(it) : ++it;
}

errdefs::StatusOr<std::string> RequestCache::insert(Request request) {
  const auto now = options_.clock();
  std::lock_guard lock(mu_);
  if (entries_.size() >= options_.max_outstanding) evict_expired_locked(now);
  if (entries_.size() >= options_.max_outstanding)
    return errdefs::ResourceExhausted("streaming: " + std::to_string(entries_.size()) +
                                      " streaming requests are already waiting for their clients");
  for (int attempt = 0; attempt < 8; ++attempt) {
    CTRD_ASSIGN_OR_RETURN(std::string token, random_token());
    if (entries_.contains(token)) continue;
    entries_.emplace(token, Entry{.request = std::move(request), .expires = now + options_.ttl});
    return token;
  }
  return errdefs::Internal("streaming: no unused token after 8 tries");
}

std::optional<Request> RequestCache::consume(const std::string& token) {
  const auto now = options_.clock();
  std::lock_guard lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  Entry entry = std::move(it->second);
  entries_.erase(it);
  if (entry.expires <= now) return std::nullopt;
  return std::move(entry.request);
}

size_t RequestCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace ctrd::streaming
