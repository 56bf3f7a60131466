#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pglease::pg {

/// `value` quoted for a libpq keyword/value connection string ('...' with \' and \\).
std::string conninfo_value(std::string_view value);

/// A libpq keyword/value connection string from (keyword, value) pairs; empty values are left out.
std::string make_conninfo(
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts);

}  // namespace pglease::pg
