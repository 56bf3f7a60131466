#pragma once

// Resetting one clone in place: what its lease touched, read from the WAL since the clone's
// baseline and from its catalog (and classified by reset_changes), and the restore of exactly
// that in one transaction. Owns no state: the clone's baseline goes in and comes out; the caller
// holds the connections.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "catalog/catalog_comment.hpp"
#include "pool/reset_changes.hpp"
#include "templates/version_snapshot.hpp"

namespace pglease {

namespace pg {
class connection;
class connection_pool;
}  // namespace pg

/// How a reset is carried out around its work.
struct reset_plan {
    /// An encoded comment written before the WAL is read (it says the clone is being reset),
    /// in the same round trip. Its commit also flushes the WAL written so far: only flushed WAL
    /// can be read. Without one, the caller has flushed it (a catalog write of its own).
    std::optional<std::string> marker;
    /// Refuse (`busy` says who) when a session on the clone other than `keep_pid` is in a
    /// transaction or running a statement.
    bool busy_check = false;
    int keep_pid = 0;
    /// An SQL condition on the clone's pg_database row: its privileges are as pglease gave them
    /// (see privileges_as_given_sql); when not, it is cloned again.
    std::string privileges = "datacl IS NULL";
    /// The encoded comment for the new baseline: committed with the reset, so that the clone
    /// is either reset and says so, or as it was.
    std::function<std::string(const reset_baseline&)> clean;
};

struct reset_result {
    /// Reset in place; false: `reason` says why it must be cloned again, and `code` in a word
    /// (a metric's label).
    bool in_place = false;
    std::string code;
    std::string reason;
    std::size_t tables = 0;
    std::size_t sequences = 0;
    reset_baseline baseline;
    /// With reset_plan::busy_check: the busy sessions, when they kept the reset off.
    std::string busy;
};

/// Brings clone `database` back to `snapshot` in place: reads what was
/// touched since `baseline` (the WAL over a connection of `maintenance`, to the database where
/// pg_walinspect is installed, held for one round trip; the catalog over `clone`, an admin
/// connection to the clone), then empties and reloads those tables and sets those sequences back in
/// one transaction. Needs a superuser admin. Throws pg::pg_error when the server fails it midway
/// (the clone is then to be cloned again).
boost::asio::awaitable<reset_result> reset_clone(pg::connection_pool& maintenance,
                                                 pg::connection& clone,
                                                 const version_snapshot& snapshot,
                                                 std::string database, reset_baseline baseline,
                                                 reset_plan plan);

}  // namespace pglease
