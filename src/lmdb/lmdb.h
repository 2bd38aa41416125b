// lmdb: RAII wrappers over liblmdb's C API, for the metadata store and the
// snapshotters' metastores (target ctrd_lmdb).
//
// Env owns an MDB_env, Txn an MDB_txn (aborted on destruction unless
// committed), Cursor an MDB_cursor. Every LMDB return code becomes an
// errdefs::Status.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "errdefs/errdefs.h"

namespace ctrd::lmdb {

// Maps an LMDB return code to a Status carrying `context` and LMDB's message.
errdefs::Status status_from_mdb(int rc, std::string_view context);

struct EnvOptions {
  size_t map_size = 0;
  unsigned max_readers = 0;
  unsigned max_tables = 0;
};

class Env {
 public:
  // Opens (creating when missing) the environment whose files live in `dir`.
  static errdefs::StatusOr<std::unique_ptr<Env>> open(const std::string& dir, const EnvOptions& options);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* get() const { return env_; }
  // Longest key LMDB accepts (511 bytes with Debian's build).
  size_t max_key_size() const { return max_key_size_; }

 private:
  explicit Env(MDB_env* env);
  MDB_env* env_;
  size_t max_key_size_;
};

class Txn {
 public:
  static errdefs::StatusOr<Txn> begin_read(const Env& env);
  // Blocks while another write transaction is open (LMDB has one writer).
  static errdefs::StatusOr<Txn> begin_write(const Env& env);

  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&& other) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();

  errdefs::Status commit();
  MDB_txn* get() const { return txn_; }

  // The value stored under `key`, or nullopt. The view points into the map and
  // stays valid until this transaction writes again or ends.
  errdefs::StatusOr<std::optional<std::string_view>> get(MDB_dbi table, std::string_view key) const;
  errdefs::Status put(MDB_dbi table, std::string_view key, std::string_view value);
  // Puts only when `key` is absent; returns false (and writes nothing) otherwise.
  errdefs::StatusOr<bool> put_new(MDB_dbi table, std::string_view key, std::string_view value);
  // Returns whether `key` existed.
  errdefs::StatusOr<bool> erase(MDB_dbi table, std::string_view key);
  // Removes `key` if it is there (erase() for callers that need not know).
  errdefs::Status remove(MDB_dbi table, std::string_view key) { return erase(table, key).status(); }

  using Visitor = std::function<errdefs::Status(std::string_view key, std::string_view value)>;
  // Visits every entry whose key starts with `prefix`, in key order.
  errdefs::Status scan_prefix(MDB_dbi table, std::string_view prefix, const Visitor& visit) const;
  // True when some key starts with `prefix`.
  errdefs::StatusOr<bool> has_prefix(MDB_dbi table, std::string_view prefix) const;
  // Removes every entry whose key starts with `prefix`; returns how many.
  errdefs::StatusOr<size_t> erase_prefix(MDB_dbi table, std::string_view prefix);

 private:
  Txn(MDB_txn* txn, size_t max_key_size) : txn_(txn), max_key_size_(max_key_size) {}
  errdefs::Status check_key(std::string_view key) const;

  MDB_txn* txn_ = nullptr;
  size_t max_key_size_ = 0;
};

class Cursor {
 public:
  static errdefs::StatusOr<Cursor> open(const Txn& txn, MDB_dbi table);
  Cursor(Cursor&& other) noexcept;
  Cursor& operator=(Cursor&& other) = delete;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor();

  // Positions at the first key >= `key`; false at the end of the table.
  errdefs::StatusOr<bool> seek(std::string_view key);
  // Advances; false at the end of the table.
  errdefs::StatusOr<bool> next();
  std::string_view key() const;
  std::string_view value() const;

 private:
  explicit Cursor(MDB_cursor* cursor) : cursor_(cursor) {}
  errdefs::StatusOr<bool> move(MDB_cursor_op op);

  MDB_cursor* cursor_ = nullptr;
  MDB_val key_{};
  MDB_val value_{};
};

}  // namespace ctrd::lmdb
