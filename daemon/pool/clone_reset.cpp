#include "pool/clone_reset.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "pg/connection.hpp"

namespace pglease {

namespace asio = boost::asio;

namespace {

// The first oid a user's object may have (FirstNormalObjectId): below it, the system's.
constexpr std::uint32_t first_user_oid = 16384;

// The same; a reload of a large table takes a while.
constexpr std::chrono::milliseconds restore_timeout{std::chrono::minutes(10)};

std::uint32_t oid_of(std::string_view text) {
    return static_cast<std::uint32_t>(std::stoul(std::string(text)));
}

template <typename Range>
std::string oid_array(const Range& oids) {
    std::string text = "{";
    bool first = true;
    for (const auto oid : oids) {
        text += (first ? "" : ",") + std::to_string(oid);
        first = false;
    }
    return text + "}";
}

bool contains(const std::vector<std::uint32_t>& list, std::uint32_t value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

// What the server says of the clone, and every WAL record since the baseline that changed a row
// or a sequence in its database (maintenance records, hint bits and index records left out: they
// change no content). One row: prepared transactions, database settings, whether the database
// is still plainly a clone, the WAL position read up to, and the changes as "node manager
// record" separated by commas.
constexpr const char* changes_sql = R"sql(
WITH upto AS (SELECT pg_current_wal_flush_lsn() AS lsn),
     me AS (SELECT oid, datallowconn AND NOT datistemplate AS plain FROM pg_database
            WHERE datname = $1)
SELECT (SELECT count(*) FROM pg_prepared_xacts WHERE database = $1),
       (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = me.oid),
       me.plain,
       upto.lsn::text,
       CASE WHEN $2::pg_lsn < upto.lsn THEN
         (SELECT coalesce(string_agg(DISTINCT m[2] || ' ' || w.resource_manager || ' ' ||
                                     w.record_type, ','), '')
          FROM pg_get_wal_records_info($2::pg_lsn, upto.lsn) w,
               LATERAL regexp_match(w.block_ref, 'rel \d+/(\d+)/(\d+)') m
          WHERE m[1] = me.oid::text AND w.xid::text <> $3
            AND (w.resource_manager = 'Sequence' OR (w.resource_manager IN ('Heap', 'Heap2')
                 AND w.record_type ~ '^(INSERT|MULTI_INSERT|UPDATE|HOT_UPDATE|DELETE)')))
       ELSE '' END
FROM upto, me
)sql";

std::vector<wal_change> parse_changes(const std::string& text) {
    std::vector<wal_change> changes;
    std::istringstream items(text);
    for (std::string item; std::getline(items, item, ',');) {
        std::istringstream parts(item);
        wal_change change;
        std::string node;
        parts >> node >> change.manager >> change.record;
        if (!node.empty()) {
            change.file_node = oid_of(node);
            changes.push_back(std::move(change));
        }
    }
    return changes;
}

// Reads a rows file in pieces for COPY FROM STDIN.
class file_source {
  public:
    explicit file_source(const std::filesystem::path& file) : in_(file, std::ios::binary) {
        if (!in_) {
            throw std::runtime_error("cannot read " + file.string());
        }
    }
    std::string_view next() {
        in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
        return {buffer_.data(), static_cast<std::size_t>(in_.gcount())};
    }

  private:
    std::ifstream in_;
    std::array<char, 1 << 16> buffer_{};
};

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

asio::awaitable<reset_result> reset_clone(pg::connection& maintenance, pg::connection& clone,
                                          const version_snapshot& snapshot, std::string database,
                                          reset_baseline baseline) {
    reset_result result;
    const auto refuse = [&](std::string code, std::string why) {
        result.in_place = false;
        result.code = std::move(code);
        result.reason = std::move(why);
        return result;
    };
    auto state = co_await maintenance.query(changes_sql, database, baseline.lsn, baseline.own_xid);
    if (state.rows() == 0) {
        co_return refuse("error", "the clone is gone");
    }
    if (state.value(0, 0) != "0") {
        co_return refuse("prepared", "a prepared transaction is left on it");
    }
    if (state.value(0, 1) != "0" || state.value(0, 2) != "t") {
        co_return refuse("settings", "the database's own settings changed");
    }
    const std::string upto(state.value(0, 3));
    const auto changes = parse_changes(std::string(state.value(0, 4)));

    std::set<std::uint32_t> nodes;
    for (const auto& change : changes) {
        nodes.insert(change.file_node);
    }
    std::vector<std::uint32_t> relations;
    for (const auto& [relation, node] : snapshot.file_nodes) {
        relations.push_back(relation);
    }
    auto catalog = co_await clone.query(
        "SELECT 'n', n::text, coalesce(pg_filenode_relation(0, n)::oid, 0)::text "
        "FROM unnest($1::oid[]) n "
        "UNION ALL SELECT 'f', c.oid::text, pg_relation_filenode(c.oid)::text FROM pg_class c "
        "WHERE c.oid = ANY($2::oid[])",
        oid_array(nodes), oid_array(relations));
    std::map<std::uint32_t, std::uint32_t> relation_of;
    std::map<std::uint32_t, std::uint32_t> current_nodes;
    for (std::size_t row = 0; row < catalog.rows(); ++row) {
        auto& into = catalog.value(row, 0) == "n" ? relation_of : current_nodes;
        into[oid_of(catalog.value(row, 1))] = oid_of(catalog.value(row, 2));
    }
    const touched_set touched =
        classify_changes(snapshot, baseline, changes, relation_of, current_nodes);
    if (touched.reclone) {
        co_return refuse(touched.reclone_code, *touched.reclone);
    }
    if (touched.class_rows_updated) {
        auto signature = co_await clone.exec(class_signature_sql);
        if (signature.value(0, 0) != snapshot.class_signature) {
            co_return refuse("catalog", "the definition of a relation changed");
        }
    }

    reset_baseline next;
    next.lsn = upto;
    next.file_nodes = baseline.file_nodes;
    const auto tables = truncate_closure(snapshot, touched.tables);
    if (tables.empty() && touched.sequences.empty()) {
        result.in_place = true;
        result.baseline = std::move(next);
        co_return result;
    }
    // One transaction. Rows go back as they were, without firing triggers or foreign key
    // checks (the template's rows passed them when they were written).
    std::string begin =
        "BEGIN; SET LOCAL session_replication_role = replica; SET LOCAL lock_timeout = '5s'; ";
    if (!tables.empty()) {
        std::string names;
        for (const auto oid : tables) {
            names += (names.empty() ? "" : ", ") + snapshot.table(oid)->name;
        }
        begin += "TRUNCATE " + names + "; ";
    }
    begin += "SELECT pg_current_xact_id()::text";
    try {
        auto xid = co_await clone.exec(std::move(begin), restore_timeout);
        next.own_xid = xid.value(0, 0);
        for (const auto oid : tables) {
            const snapshot_table& table = *snapshot.table(oid);
            if (table.rows == 0) {
                continue;
            }
            file_source rows(snapshot.rows_file(table));
            const auto source = [&rows] { return rows.next(); };
            co_await clone.copy_in(
                "COPY " + table.name + " (" + table.columns + ") FROM STDIN (FORMAT binary)",
                source, restore_timeout);
        }
        std::string finish;
        for (const auto oid : touched.sequences) {
            const snapshot_sequence& sequence = *snapshot.sequence(oid);
            finish += "SELECT setval(" + clone.quote_literal(sequence.name) + ", " +
                      sequence.last_value + ", " + (sequence.is_called ? "true" : "false") + "); ";
        }
        // The truncated tables' relations have new file nodes: the next reset expects those.
        std::vector<std::uint32_t> renewed;
        for (const auto& [part, owner] : snapshot.owner_table) {
            if (std::find(tables.begin(), tables.end(), owner) != tables.end()) {
                renewed.push_back(part);
            }
        }
        for (const auto oid : touched.sequences) {
            renewed.push_back(oid);
        }
        finish +=
            "COMMIT; SELECT oid::text, pg_relation_filenode(oid)::text FROM pg_class "
            "WHERE oid = ANY('" +
            oid_array(renewed) + "'::oid[])";
        auto renewed_nodes = co_await clone.exec(std::move(finish), restore_timeout);
        for (std::size_t row = 0; row < renewed_nodes.rows(); ++row) {
            const auto relation = oid_of(renewed_nodes.value(row, 0));
            const auto node = oid_of(renewed_nodes.value(row, 1));
            if (snapshot.file_nodes.at(relation) == node) {
                next.file_nodes.erase(relation);
            } else {
                next.file_nodes[relation] = node;
            }
        }
    } catch (...) {
        clone.close();  // its transaction is in an unknown state
        throw;
    }
    result.in_place = true;
    result.tables = tables.size();
    result.sequences = touched.sequences.size();
    result.baseline = std::move(next);
    co_return result;
}

}  // namespace pglease
