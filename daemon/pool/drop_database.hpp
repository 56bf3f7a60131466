#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

namespace pglease {

namespace pg {
class connection;
}

/// How long CREATE and DROP DATABASE may take: a large template cloned with FILE_COPY on disk
/// takes minutes.
inline constexpr std::chrono::milliseconds database_operation_timeout{std::chrono::minutes(10)};

/// Drops database `name`, un-marking it as a template first. When `still_needed` says so once
/// the database has been looked at (a queued drop may find the name a live template again),
/// leaves it and returns false.
boost::asio::awaitable<bool> drop_database(pg::connection& conn, std::string name,
                                           std::function<bool()> still_needed = {});

}  // namespace pglease
