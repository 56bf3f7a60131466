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

}  // namespace pglease
