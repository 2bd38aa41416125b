// digest/sha256: the running SHA-256 state behind every digest ctrd computes
// (OpenSSL EVP, which uses SHA-NI where the CPU has it).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "errdefs/errdefs.h"

struct evp_md_ctx_st;

namespace ctrd::digest {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data);
  void reset();
  // Lowercase hex of everything hashed so far; hashing may continue afterwards.
  std::string hex() const;
  // "sha256:<hex>".
  std::string digest() const;

  static std::string hex_of(std::string_view data);

 private:
  struct CtxDeleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx_;
};

}  // namespace ctrd::digest
