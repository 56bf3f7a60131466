#pragma once

#include <string>
#include <string_view>

namespace pglease {

/// Iterations for a password of pglease's own making: it is 256 random bits, so key stretching
/// adds nothing, while every login pays for it (4096 iterations cost about 8 ms per connection).
inline constexpr int generated_password_iterations = 16;

/// The SCRAM-SHA-256 secret of `password` in the form PostgreSQL stores and accepts in
/// CREATE/ALTER ROLE … PASSWORD: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>,
/// base64 (RFC 5802, RFC 7677). `password` must be printable ASCII (SASLprep leaves it as is).
std::string scram_sha256_secret(std::string_view password, std::string_view salt, int iterations);

/// The same with 16 random bytes of salt.
std::string scram_sha256_secret(std::string_view password, int iterations);

}  // namespace pglease
