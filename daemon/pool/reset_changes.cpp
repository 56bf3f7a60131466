#include "pool/reset_changes.hpp"

#include <algorithm>

namespace pglease {

namespace {

// The first oid a user's object may have (FirstNormalObjectId): below it, the system's.
constexpr std::uint32_t first_user_oid = 16384;

bool contains(const std::vector<std::uint32_t>& list, std::uint32_t value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

touched_set classify_changes(const version_snapshot& snapshot, const reset_baseline& baseline,
                             const std::vector<wal_change>& changes,
                             const std::map<std::uint32_t, std::uint32_t>& relation_of,
                             const std::map<std::uint32_t, std::uint32_t>& current_nodes) {
    touched_set touched;
    for (const auto& change : changes) {
        const auto found = relation_of.find(change.file_node);
        const std::uint32_t relation = found == relation_of.end() ? 0 : found->second;
        if (relation == 0) {
            // A file node no relation has now: replaced since (a truncate or a rewrite, which
            // the file nodes below show) or dropped (which changed the catalog).
            continue;
        }
        if (auto owner = snapshot.owner_table.find(relation); owner != snapshot.owner_table.end()) {
            touched.tables.insert(owner->second);
        } else if (snapshot.sequence(relation) != nullptr) {
            touched.sequences.insert(relation);
        } else if (contains(snapshot.statistics_catalogs, relation)) {
            continue;  // planner statistics: ANALYZE, autovacuum's too
        } else if (contains(snapshot.class_catalog, relation) && change.manager == "Heap" &&
                   (change.record.starts_with("UPDATE") ||
                    change.record.starts_with("HOT_UPDATE"))) {
            touched.class_rows_updated = true;
        } else if (relation < first_user_oid) {
            touched.reclone = "the catalog changed (DDL or a large object)";
            touched.reclone_code = "catalog";
        } else {
            touched.reclone = "a relation the template does not have";
            touched.reclone_code = "catalog";
        }
    }
    for (const auto& [relation, template_node] : snapshot.file_nodes) {
        const auto now = current_nodes.find(relation);
        if (now == current_nodes.end()) {
            touched.reclone = "a relation of the template was dropped";
            touched.reclone_code = "catalog";
            continue;
        }
        const auto reset_node = baseline.file_nodes.find(relation);
        const std::uint32_t expected =
            reset_node != baseline.file_nodes.end() ? reset_node->second : template_node;
        if (now->second == expected) {
            continue;
        }
        if (auto owner = snapshot.owner_table.find(relation); owner != snapshot.owner_table.end()) {
            touched.tables.insert(owner->second);  // truncated, clustered or rewritten
        } else {
            touched.sequences.insert(relation);
        }
    }
    for (const auto& table : snapshot.tables) {
        if (table.unlogged) {
            touched.tables.insert(table.oid);  // its changes are not in the WAL
        }
    }
    for (const auto oid : touched.tables) {
        const snapshot_table* table = snapshot.table(oid);
        if (table != nullptr && table->materialized) {
            touched.reclone = "a materialized view was refreshed or changed";
            touched.reclone_code = "materialized";
        }
    }
    return touched;
}

std::vector<std::uint32_t> truncate_closure(const version_snapshot& snapshot,
                                            const std::set<std::uint32_t>& touched) {
    std::set<std::uint32_t> closure(touched.begin(), touched.end());
    std::vector<std::uint32_t> pending(touched.begin(), touched.end());
    while (!pending.empty()) {
        const std::uint32_t oid = pending.back();
        pending.pop_back();
        if (const snapshot_table* table = snapshot.table(oid)) {
            for (const auto referencing : table->referenced_by) {
                if (closure.insert(referencing).second) {
                    pending.push_back(referencing);
                }
            }
        }
    }
    std::vector<std::uint32_t> ordered;
    for (const auto& table : snapshot.tables) {
        if (closure.contains(table.oid)) {
            ordered.push_back(table.oid);
        }
    }
    return ordered;
}

}  // namespace pglease
