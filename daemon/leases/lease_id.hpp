#pragma once

#include <string>
#include <string_view>

namespace pglease {

/// A new lease id: 128 bits from the kernel's CSPRNG, as 32 lowercase hex characters.
std::string new_lease_id();

/// True when `text` has the form of a lease id (32 lowercase hex characters).
bool is_lease_id(std::string_view text) noexcept;

/// The key a lease is stored under in memory and in the catalog: SHA-256 of its id, so the id
/// itself (the right to the lease) never appears in world-readable database comments.
std::string lease_key(std::string_view id);

/// The password of a lease's own role (per-lease roles): HMAC-SHA-256 of a fixed text under the
/// lease's id, 32 hex characters. Only the id's holder (and the broker, while it answers a call
/// that names the id) can derive it: not from the key, which comments show to anyone, nor from
/// any password a worker is given. So it is never stored, and a restarted broker, or a standby,
/// gives the same one.
std::string lease_role_password(std::string_view id);

}  // namespace pglease
