#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pglease::pg {

/// PostgreSQL silently truncates identifiers longer than this many bytes.
inline constexpr std::size_t max_identifier_bytes = 63;

/// Why `name` cannot be used as an identifier (empty, too long, NUL byte), or std::nullopt.
std::optional<std::string> identifier_problem(std::string_view name);

}  // namespace pglease::pg
