#pragma once

// What a lease touched in a clone, from the WAL records since the clone's baseline and its file
// nodes now, against the template's snapshot: the tables and sequences a reset restores, or why
// it cannot be proven exact. Pure: no connection, no state.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "catalog/catalog_comment.hpp"
#include "templates/version_snapshot.hpp"

namespace pglease {

/// A WAL record's mark on one file node of the clone's database.
struct wal_change {
    std::uint32_t file_node = 0;
    std::string manager;  // resource manager: Heap, Heap2, Sequence
    std::string record;   // record type: INSERT, HOT_UPDATE, ...
};

/// What a lease touched, or why the clone must be cloned again.
struct touched_set {
    std::set<std::uint32_t> tables;
    std::set<std::uint32_t> sequences;
    /// pg_class rows were updated, as a TRUNCATE does; the definitions must be checked.
    bool class_rows_updated = false;
    /// Set when the result could not be proven exact: the clone is cloned again.
    std::optional<std::string> reclone;
    /// The reason in a word: catalog, relation.
    std::string reclone_code;
};

/// Classifies the changes since `baseline`: `relation_of` maps file nodes to the relations
/// they belong to now (0: none), `current_nodes` gives the file node of each of the
/// snapshot's relations now (a missing one was dropped).
touched_set classify_changes(const version_snapshot& snapshot, const reset_baseline& baseline,
                             const std::vector<wal_change>& changes,
                             const std::map<std::uint32_t, std::uint32_t>& relation_of,
                             const std::map<std::uint32_t, std::uint32_t>& current_nodes);

/// The tables a reset truncates for `touched`: them and, recursively, the tables whose foreign
/// keys reference them, in the snapshot's order.
std::vector<std::uint32_t> truncate_closure(const version_snapshot& snapshot,
                                            const std::set<std::uint32_t>& touched);

}  // namespace pglease
