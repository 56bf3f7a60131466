#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace pglease {

/// SHA-256 of `data` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view data);

/// HMAC-SHA-256 of `message` under `key` (RFC 2104) as 64 lowercase hex characters.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

/// SHA-256 over several pieces of data fed in turn.
class sha256_hasher {
  public:
    sha256_hasher();
    sha256_hasher(const sha256_hasher&) = delete;
    sha256_hasher& operator=(const sha256_hasher&) = delete;
    ~sha256_hasher();

    /// Feeds `data`.
    void update(std::string_view data);
    /// Feeds `data` preceded by its length, so that ("ab","c") and ("a","bc") differ.
    void update_framed(std::string_view data);
    /// The digest as 64 lowercase hex characters; the hasher is spent afterwards.
    std::string finish();

  private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace pglease
