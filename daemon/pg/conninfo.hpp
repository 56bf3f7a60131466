#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace pglease::pg {

/// `value` quoted for a libpq keyword/value connection string ('...' with \' and \\).
std::string conninfo_value(std::string_view value);

/// A libpq keyword/value connection string from (keyword, value) pairs; empty values are left out.
std::string make_conninfo(
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts);

/// The options of a connection string (keyword/value or URI) as libpq parses them, without
/// empty ones. Throws std::invalid_argument with libpq's message when it does not parse.
std::map<std::string, std::string> parse_conninfo(const std::string& conninfo);

/// `conninfo` with its database replaced by `database`.
std::string with_database(const std::string& conninfo, const std::string& database);

/// `conninfo` whose sessions start with run-time parameter `name` set to `value` (libpq's
/// `options=-c name=value`, after any options it already has). `value` holds no spaces.
std::string with_session_setting(const std::string& conninfo, const std::string& name,
                                 const std::string& value);

}  // namespace pglease::pg
