#pragma once

// What a template version holds, recorded once when it is built, so that a clone can be brought
// back to it in place: per table its rows (in files of its own), its columns and the tables
// that reference it; per sequence its state; the relations that belong to each table; and a
// signature of the relations' definitions. Owned by the version's pool once built; read-only.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace pglease {

namespace pg {
class connection;
}

struct snapshot_table {
    std::uint32_t oid = 0;
    /// "schema"."table", quoted.
    std::string name;
    /// The columns COPY writes (not generated ones), quoted and comma-separated.
    std::string columns;
    /// Rows in the template: 0 means nothing to load back.
    std::uint64_t rows = 0;
    /// Unlogged: its changes leave no trace in the WAL, so it is reset every time.
    bool unlogged = false;
    /// A materialized view: when touched, the clone is cloned again.
    bool materialized = false;
    /// Tables whose foreign keys reference this one (a truncate takes them along).
    std::vector<std::uint32_t> referenced_by;
};

struct snapshot_sequence {
    std::uint32_t oid = 0;
    std::string name;
    std::string last_value;
    bool is_called = false;
};

struct version_snapshot {
    std::vector<snapshot_table> tables;
    std::vector<snapshot_sequence> sequences;
    /// Every relation of the version's tables (the table, its indexes, its TOAST table and
    /// index) by oid, to the table it belongs to.
    std::map<std::uint32_t, std::uint32_t> owner_table;
    /// The file node of each of those relations and of each sequence, as in the template (a
    /// fresh clone has the same).
    std::map<std::uint32_t, std::uint32_t> file_nodes;
    /// Catalogs whose rows change without any DDL (planner statistics written by ANALYZE).
    std::vector<std::uint32_t> statistics_catalogs;
    /// pg_class and its indexes: a TRUNCATE changes their rows, and only the file nodes.
    std::vector<std::uint32_t> class_catalog;
    /// Digest of the definitions of the user's relations in pg_class, file nodes and sizes
    /// left out.
    std::string class_signature;
    /// Where the rows of each table with rows are kept: <dir>/<oid>.copy (COPY binary).
    std::filesystem::path dir;

    const snapshot_table* table(std::uint32_t oid) const noexcept;
    const snapshot_sequence* sequence(std::uint32_t oid) const noexcept;
    /// The file holding the rows of `table`.
    std::filesystem::path rows_file(const snapshot_table& table) const;
};

/// The query that computes version_snapshot::class_signature in a database.
extern const char* const class_signature_sql;

/// Records what the template database `conn` is connected to holds, rows into `dir` (made
/// fresh), and the manifest beside them. Sets every sequence back to its own value first, so
/// that the first nextval in a clone leaves a WAL record. Throws pg::pg_error or
/// std::runtime_error (files).
boost::asio::awaitable<version_snapshot> take_snapshot(pg::connection& conn,
                                                       std::filesystem::path dir);

/// The snapshot recorded in `dir` earlier, or std::nullopt when there is none or it cannot be
/// read (the version then recycles by cloning again).
std::optional<version_snapshot> load_snapshot(const std::filesystem::path& dir);

}  // namespace pglease
