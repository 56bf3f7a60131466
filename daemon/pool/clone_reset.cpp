#include "pool/clone_reset.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "pg/connection.hpp"
#include "pg/connection_pool.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

namespace asio = boost::asio;

namespace {

// The same; a reload of a large table takes a while.
constexpr std::chrono::milliseconds restore_timeout{std::chrono::minutes(10)};

// A touched table up to this size has its rows deleted rather than truncated: a delete touches
// that table alone, while a truncate creates new files for it, its indexes and every table whose
// foreign keys point at it (which a truncate must take along).
constexpr std::uint64_t delete_below_bytes = 1 << 20;

// For the file nodes the WAL names: the relation each belongs to now (0: none) and whether a
// DELETE could take that relation's rows cheaply and do nothing more (small, no rule rewrites
// it, no user trigger fires in replica mode); for the snapshot's relations: their file node now.
constexpr const char* catalog_sql = R"sql(
SELECT 'n', n::text, coalesce(r::oid, 0)::text,
       (r IS NOT NULL AND pg_relation_size(r) < $3::bigint AND NOT c.relhasrules
        AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = r AND NOT t.tgisinternal
                        AND t.tgenabled IN ('R', 'A')))::text
FROM unnest($1::oid[]) n LEFT JOIN LATERAL pg_filenode_relation(0, n) r ON true
     LEFT JOIN pg_class c ON c.oid = r
UNION ALL
SELECT 'f', c.oid::text, pg_relation_filenode(c.oid)::text, c.reltablespace::text FROM pg_class c
WHERE c.oid = ANY($2::oid[])
UNION ALL
SELECT DISTINCT 't', t.tgrelid::text, '0', '' FROM pg_trigger t
WHERE t.tgrelid = ANY($2::oid[]) AND NOT t.tgisinternal AND t.tgenabled IN ('R', 'A')
)sql";

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

// What the server says of the clone, and every WAL record since the baseline that changed a row
// or a sequence in its database (maintenance records, hint bits and index records left out: they
// change no content). One row: prepared transactions, database settings, whether the database
// is still plainly a clone, the WAL position read up to, the changes as "node manager record"
// separated by commas, the bytes of WAL since the baseline (past `max_bytes` the WAL is not read:
// reading it would cost more than a clone), and the sessions other than `keep_pid` that are in a
// transaction or running a statement (when `check_busy`). Literals, not parameters: it may follow
// a comment's write in one round trip.
std::string changes_sql(const pg::connection& conn, const std::string& database,
                        const reset_baseline& baseline, std::int64_t max_bytes, bool check_busy,
                        int keep_pid, const std::string& privileges) {
    const std::string name = conn.quote_literal(database);
    const std::string from = conn.quote_literal(baseline.lsn) + "::pg_lsn";
    const std::string busy =
        check_busy ? "(SELECT coalesce(string_agg('pid ' || a.pid || ' (' || "
                     "coalesce(a.state, 'starting') || ')', ', ' ORDER BY a.pid), '') "
                     "FROM pg_stat_get_activity(NULL) a WHERE a.datid = me.oid "
                     "AND a.backend_type = 'client backend' "
                     "AND a.pid <> pg_backend_pid() AND a.pid <> " +
                         std::to_string(keep_pid) + " AND a.state IS DISTINCT FROM 'idle')"
                   : std::string("''");
    return R"sql(
WITH upto AS (SELECT pg_current_wal_flush_lsn() AS lsn),
     me AS (SELECT oid, datallowconn AND NOT datistemplate AND datconnlimit = -1
                        AND )sql" +
           privileges + R"sql( AS plain FROM pg_database
            WHERE datname = )sql" +
           name + R"sql()
SELECT (SELECT count(*) FROM pg_prepared_xacts WHERE database = )sql" +
           name + R"sql(),
       (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = me.oid),
       me.plain,
       upto.lsn::text,
       CASE WHEN )sql" +
           from + " < upto.lsn AND pg_wal_lsn_diff(upto.lsn, " + from +
           ") <= " + std::to_string(max_bytes) + R"sql(
       THEN
         (SELECT coalesce(string_agg(DISTINCT m[2] || ' ' || w.resource_manager || ' ' ||
                                     w.record_type, ','), '')
          FROM pg_get_wal_records_info()sql" +
           from + R"sql(, upto.lsn) w,
               LATERAL regexp_match(w.block_ref, 'rel \d+/(\d+)/(\d+)') m
          WHERE m[1] = me.oid::text AND w.xid::text <> )sql" +
           conn.quote_literal(baseline.own_xid) + R"sql(
            AND (w.resource_manager = 'Sequence' OR (w.resource_manager IN ('Heap', 'Heap2')
                 AND w.record_type ~ '^(INSERT|MULTI_INSERT|UPDATE|HOT_UPDATE|DELETE)')))
       ELSE '' END,
       pg_wal_lsn_diff(upto.lsn, )sql" +
           from + R"sql()::bigint,
       )sql" +
           busy + R"sql(
FROM upto, me
)sql";
}

// The most WAL a reset reads; the embedded cluster keeps more than this (wal_keep_size).
constexpr std::int64_t max_wal_bytes = 64ll << 20;

// SQLSTATE undefined_file: the WAL since the baseline was removed at a checkpoint.
constexpr std::string_view wal_removed = "58P01";

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

asio::awaitable<reset_result> reset_clone(pg::connection_pool& maintenance, pg::connection& clone,
                                          const version_snapshot& snapshot, std::string database,
                                          reset_baseline baseline, reset_plan plan) {
    reset_result result;
    const auto refuse = [&](std::string code, std::string why) {
        result.in_place = false;
        result.code = std::move(code);
        result.reason = std::move(why);
        return result;
    };
    // One round trip: the marker (its commit also flushes the WAL written so far, which is what
    // can be read), then what the server says of the clone and its WAL.
    std::string first;
    if (plan.marker) {
        first = "BEGIN; SET LOCAL synchronous_commit TO local; COMMENT ON DATABASE " +
                clone.quote_identifier(database) + " IS " + clone.quote_literal(*plan.marker) +
                "; COMMIT; ";
    }
    first += changes_sql(clone, database, baseline, max_wal_bytes, plan.busy_check, plan.keep_pid,
                         plan.privileges);
    pg::result state;
    try {
        // Held for this round trip alone: resets of other clones take turns on the pool.
        auto reader = co_await maintenance.acquire();
        state = co_await reader->exec(std::move(first));
    } catch (const pg::pg_error& e) {
        if (e.sqlstate() != wal_removed) {
            throw;
        }
        co_return refuse("wal",
                         "the WAL since its last reset was removed at a checkpoint "
                         "(the backend's wal_keep_size is too small)");
    }
    if (state.rows() == 0) {
        co_return refuse("error", "the clone is gone");
    }
    if (!state.value(0, 6).empty()) {
        result.busy = std::string(state.value(0, 6));
        co_return refuse("sessions", "sessions are busy: " + result.busy);
    }
    if (std::stoll(std::string(state.value(0, 5))) > max_wal_bytes) {
        co_return refuse("wal", "more than " + std::to_string(max_wal_bytes >> 20) +
                                    " MB of WAL since its last reset: a clone costs less than "
                                    "reading it");
    }
    if (state.value(0, 0) != "0") {
        co_return refuse("prepared", "a prepared transaction is left on it");
    }
    if (state.value(0, 1) != "0" || state.value(0, 2) != "t") {
        co_return refuse("settings",
                         "the database's own settings, connection limit or privileges changed");
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
    auto catalog = co_await clone.query(catalog_sql, oid_array(nodes), oid_array(relations),
                                        std::to_string(delete_below_bytes));
    std::map<std::uint32_t, std::uint32_t> relation_of;
    std::map<std::uint32_t, std::uint32_t> current_nodes;
    // Relations a DELETE could empty cheaply, and those it could not.
    std::set<std::uint32_t> small;
    std::set<std::uint32_t> large;
    // Tables with triggers that fire even in replica mode: a reload would fire them.
    std::set<std::uint32_t> firing;
    for (std::size_t row = 0; row < catalog.rows(); ++row) {
        if (catalog.value(row, 0) == "t") {
            firing.insert(oid_of(catalog.value(row, 1)));
            continue;
        }
        const bool node_row = catalog.value(row, 0) == "n";
        if (!node_row && catalog.value(row, 3) != "0") {
            // The WAL names its file nodes under that tablespace, which the reading above
            // does not map back to relations.
            co_return refuse("catalog",
                             "a relation of the template lives in a tablespace of "
                             "its own");
        }
        auto& into = node_row ? relation_of : current_nodes;
        const auto relation = oid_of(catalog.value(row, 2));
        into[oid_of(catalog.value(row, 1))] = relation;
        if (node_row && relation != 0) {
            (catalog.value(row, 3) == "true" ? small : large).insert(relation);
        }
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
    const auto commit = [&](const reset_baseline& clean) {
        return plan.clean ? "COMMENT ON DATABASE " + clone.quote_identifier(database) + " IS " +
                                clone.quote_literal(plan.clean(clean)) + "; COMMIT"
                          : std::string("COMMIT");
    };
    if (touched.tables.empty() && touched.sequences.empty()) {
        if (plan.clean) {
            co_await clone.exec("BEGIN; SET LOCAL synchronous_commit TO local; " + commit(next));
        }
        result.in_place = true;
        result.baseline = std::move(next);
        co_return result;
    }
    // A touched table whose files are still its baseline's, small, and whose own file nodes all
    // say so (its TOAST table's too) loses its rows by DELETE: that touches it alone. The others
    // are truncated, and with them the tables whose foreign keys point at them.
    std::set<std::uint32_t> deleted;
    std::set<std::uint32_t> truncated_roots;
    for (const auto oid : touched.tables) {
        const auto now = current_nodes.find(oid);
        const auto reset_node = baseline.file_nodes.find(oid);
        const auto template_node = snapshot.file_nodes.find(oid);
        const std::uint32_t expected =
            reset_node != baseline.file_nodes.end()
                ? reset_node->second
                : (template_node != snapshot.file_nodes.end() ? template_node->second : 0);
        bool cheap = now != current_nodes.end() && now->second == expected && small.contains(oid);
        for (const auto& [part, owner] : snapshot.owner_table) {
            if (owner == oid && large.contains(part)) {
                cheap = false;
            }
        }
        (cheap ? deleted : truncated_roots).insert(oid);
    }
    const auto truncated = truncate_closure(snapshot, truncated_roots);
    for (const auto oid : truncated) {
        deleted.erase(oid);  // a truncate takes it along anyway
    }
    std::vector<std::uint32_t> tables = truncated;
    for (const auto& table : snapshot.tables) {
        if (deleted.contains(table.oid)) {
            tables.push_back(table.oid);
        }
    }
    for (const auto oid : tables) {
        if (firing.contains(oid)) {
            co_return refuse("triggers", "a trigger of " + snapshot.table(oid)->name +
                                             " fires even in replica mode (ENABLE ALWAYS or "
                                             "REPLICA): reloading its rows would fire it");
        }
    }
    // One transaction. Rows go back as they were, without firing triggers or foreign key
    // checks (the template's rows passed them when they were written). The comment that says
    // the clone is clean commits with it.
    std::string begin =
        "BEGIN; SET LOCAL session_replication_role = replica; SET LOCAL lock_timeout = '5s'; "
        "SET LOCAL synchronous_commit TO local; ";
    if (!truncated.empty()) {
        // ONLY: a table's inheritance children are tables of their own here.
        std::string names;
        for (const auto oid : truncated) {
            names += (names.empty() ? "ONLY " : ", ONLY ") + snapshot.table(oid)->name;
        }
        // A partitioned table whose foreign key points at one of them must be named too (its
        // partitions, which hold the rows, are among them already).
        auto parents = co_await clone.query(
            "SELECT DISTINCT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE k.contype = 'f' AND c.relkind = 'p' AND k.confrelid = ANY($1::oid[])",
            oid_array(truncated));
        for (std::size_t row = 0; row < parents.rows(); ++row) {
            names += ", " + std::string(parents.value(row, 0));
        }
        begin += "TRUNCATE " + names + "; ";
    }
    for (const auto oid : deleted) {
        begin += "DELETE FROM ONLY " + snapshot.table(oid)->name + "; ";
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
        // setval alone is not undone by a rollback; on a sequence given a new file node in this
        // transaction (RESTART) it is: a reset cut short leaves every sequence as it was.
        std::string finish;
        for (const auto oid : touched.sequences) {
            const snapshot_sequence& sequence = *snapshot.sequence(oid);
            finish += "ALTER SEQUENCE " + sequence.name + " RESTART; SELECT setval(" +
                      clone.quote_literal(sequence.name) + ", " + sequence.last_value + ", " +
                      (sequence.is_called ? "true" : "false") + "); ";
        }
        // The truncated tables' relations and the sequences have new file nodes, read before
        // the commit: the next reset expects those.
        const auto record_node = [&](std::uint32_t relation, std::uint32_t node) {
            if (snapshot.file_nodes.at(relation) == node) {
                next.file_nodes.erase(relation);
            } else {
                next.file_nodes[relation] = node;
            }
        };
        std::vector<std::uint32_t> renewed(touched.sequences.begin(), touched.sequences.end());
        for (const auto& [part, owner] : snapshot.owner_table) {
            if (std::find(truncated.begin(), truncated.end(), owner) != truncated.end()) {
                renewed.push_back(part);
            }
        }
        if (!renewed.empty()) {
            finish +=
                "SELECT oid::text, pg_relation_filenode(oid)::text FROM pg_class "
                "WHERE oid = ANY('" +
                oid_array(renewed) + "'::oid[])";
            auto renewed_nodes = co_await clone.exec(std::move(finish), restore_timeout);
            finish.clear();
            for (std::size_t row = 0; row < renewed_nodes.rows(); ++row) {
                record_node(oid_of(renewed_nodes.value(row, 0)),
                            oid_of(renewed_nodes.value(row, 1)));
            }
        }
        co_await clone.exec(finish + commit(next), restore_timeout);
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
