#pragma once

// Reads what the catalog holds: the databases with the prefix and their comments, and the files
// of databases that no longer exist. Owns no state.

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "broker/lease_types.hpp"
#include "catalog/reconcile_plan.hpp"

namespace pglease {

namespace pg {
class connection;
}

/// Every database whose name starts with `prefix`, with its comment and owner.
boost::asio::awaitable<std::vector<listed_database>> read_listing(pg::connection& conn,
                                                                  const std::string& prefix);

/// The oid (as text) of every database on the server.
boost::asio::awaitable<std::set<std::string>> database_oids(pg::connection& conn);

/// Removes the directories under `pgdata`/base that no database in `live_oids` owns: files of a
/// CREATE DATABASE killed midway, which PostgreSQL never frees. Only for a data directory that
/// is ours, while nothing is being cloned.
void remove_orphaned_files(const std::filesystem::path& pgdata,
                           const std::set<std::string>& live_oids, const std::string& backend);

/// Finds such directories on a server whose data directory is not ours, over `conn`; they are
/// reported, never removed. std::nullopt (and `refusal` set to why) when the admin may not
/// list the data directory.
boost::asio::awaitable<std::optional<orphan_files>> find_orphaned_files(pg::connection& conn,
                                                                        std::string& refusal);

}  // namespace pglease
