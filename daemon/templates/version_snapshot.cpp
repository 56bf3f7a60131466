#include "templates/version_snapshot.hpp"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "pg/connection.hpp"

namespace pglease {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr std::chrono::milliseconds copy_timeout{std::chrono::minutes(10)};

std::uint32_t oid_of(std::string_view text) {
    return static_cast<std::uint32_t>(std::stoul(std::string(text)));
}

// The relations and catalogs a snapshot needs, in one query each.
constexpr const char* tables_sql = R"sql(
SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relpersistence = 'u',
       c.relkind = 'm',
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%'
ORDER BY c.oid
)sql";

// Each table's indexes, TOAST table and TOAST index, with the table they belong to.
constexpr const char* parts_sql = R"sql(
SELECT i.indexrelid, i.indrelid FROM pg_index i WHERE i.indrelid = ANY($1::oid[])
UNION ALL
SELECT c.reltoastrelid, c.oid FROM pg_class c WHERE c.oid = ANY($1::oid[]) AND c.reltoastrelid <> 0
UNION ALL
SELECT i.indexrelid, c.oid FROM pg_class c JOIN pg_index i ON i.indrelid = c.reltoastrelid
WHERE c.oid = ANY($1::oid[]) AND c.reltoastrelid <> 0
)sql";

std::string oid_array(const std::vector<std::uint32_t>& oids) {
    std::string text = "{";
    for (std::size_t i = 0; i < oids.size(); ++i) {
        text += (i > 0 ? "," : "") + std::to_string(oids[i]);
    }
    return text + "}";
}

json to_json(const version_snapshot& s) {
    json tables = json::array();
    for (const auto& t : s.tables) {
        tables.push_back({{"oid", t.oid},
                          {"name", t.name},
                          {"columns", t.columns},
                          {"rows", t.rows},
                          {"unlogged", t.unlogged},
                          {"materialized", t.materialized},
                          {"referenced_by", t.referenced_by}});
    }
    json sequences = json::array();
    for (const auto& q : s.sequences) {
        sequences.push_back({{"oid", q.oid},
                             {"name", q.name},
                             {"last_value", q.last_value},
                             {"is_called", q.is_called}});
    }
    json owners = json::object();
    for (const auto& [part, table] : s.owner_table) {
        owners[std::to_string(part)] = table;
    }
    json nodes = json::object();
    for (const auto& [rel, node] : s.file_nodes) {
        nodes[std::to_string(rel)] = node;
    }
    return {{"format", 1},
            {"tables", tables},
            {"sequences", sequences},
            {"owner_table", owners},
            {"file_nodes", nodes},
            {"statistics_catalogs", s.statistics_catalogs},
            {"class_catalog", s.class_catalog},
            {"class_signature", s.class_signature}};
}

}  // namespace

const char* const class_signature_sql = R"sql(
SELECT md5(coalesce(string_agg(concat_ws('|', c.oid, c.relname, c.relnamespace, c.reltype,
    c.reloftype, c.relowner, c.relam, c.reltablespace, c.relkind, c.relpersistence, c.relnatts,
    c.relchecks, c.relhasrules, c.relhastriggers, c.relhassubclass, c.relrowsecurity,
    c.relforcerowsecurity, c.relispopulated, c.relreplident, c.relispartition, c.relacl::text,
    c.reloptions::text, pg_get_expr(c.relpartbound, c.oid)), E'\n' ORDER BY c.oid), ''))
FROM pg_class c WHERE c.oid >= 16384
)sql";

const snapshot_table* version_snapshot::table(std::uint32_t oid) const noexcept {
    for (const auto& t : tables) {
        if (t.oid == oid) {
            return &t;
        }
    }
    return nullptr;
}

const snapshot_sequence* version_snapshot::sequence(std::uint32_t oid) const noexcept {
    for (const auto& q : sequences) {
        if (q.oid == oid) {
            return &q;
        }
    }
    return nullptr;
}

fs::path version_snapshot::rows_file(const snapshot_table& table) const {
    return dir / (std::to_string(table.oid) + ".copy");
}

asio::awaitable<version_snapshot> take_snapshot(pg::connection& conn, fs::path dir) {
    version_snapshot snap;
    snap.dir = dir;
    fs::remove_all(dir);
    fs::create_directories(dir);

    auto sequences = co_await conn.exec(
        "SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' ORDER BY c.oid");
    for (std::size_t row = 0; row < sequences.rows(); ++row) {
        snapshot_sequence q;
        q.oid = oid_of(sequences.value(row, 0));
        q.name = sequences.value(row, 1);
        auto state = co_await conn.exec("SELECT last_value::text, is_called FROM " + q.name);
        q.last_value = state.value(0, 0);
        q.is_called = state.value(0, 1) == "t";
        // Setting it to its own value leaves no value logged ahead: the first nextval in a
        // clone writes a WAL record, which is how a reset sees it was used.
        co_await conn.exec("SELECT setval(" + conn.quote_literal(q.name) + ", " + q.last_value +
                           ", " + (q.is_called ? "true" : "false") + ")");
        snap.sequences.push_back(std::move(q));
    }

    auto tables = co_await conn.exec(tables_sql);
    std::vector<std::uint32_t> table_oids;
    for (std::size_t row = 0; row < tables.rows(); ++row) {
        snapshot_table t;
        t.oid = oid_of(tables.value(row, 0));
        t.name = tables.value(row, 1);
        t.unlogged = tables.value(row, 2) == "t";
        t.materialized = tables.value(row, 3) == "t";
        t.columns = tables.value(row, 4);
        table_oids.push_back(t.oid);
        snap.owner_table[t.oid] = t.oid;
        if (!t.columns.empty()) {
            const fs::path file = dir / (std::to_string(t.oid) + ".copy");
            std::ofstream out(file, std::ios::binary);
            const auto sink = [&](std::string_view chunk) {
                out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
            };
            t.rows = co_await conn.copy_out("COPY (SELECT " + t.columns + " FROM ONLY " + t.name +
                                                ") TO STDOUT (FORMAT binary)",
                                            sink, copy_timeout);
            out.close();
            if (!out) {
                throw std::runtime_error("cannot write " + file.string());
            }
            if (t.rows == 0) {
                fs::remove(file);
            }
        }
        snap.tables.push_back(std::move(t));
    }
    const std::string oids = oid_array(table_oids);
    auto parts = co_await conn.query(parts_sql, oids);
    for (std::size_t row = 0; row < parts.rows(); ++row) {
        snap.owner_table[oid_of(parts.value(row, 0))] = oid_of(parts.value(row, 1));
    }
    std::vector<std::uint32_t> relations;
    for (const auto& [part, table] : snap.owner_table) {
        relations.push_back(part);
    }
    for (const auto& q : snap.sequences) {
        relations.push_back(q.oid);
    }
    auto nodes = co_await conn.query(
        "SELECT oid, pg_relation_filenode(oid) FROM pg_class WHERE oid = ANY($1::oid[])",
        oid_array(relations));
    for (std::size_t row = 0; row < nodes.rows(); ++row) {
        snap.file_nodes[oid_of(nodes.value(row, 0))] = oid_of(nodes.value(row, 1));
    }
    auto references = co_await conn.exec(
        "SELECT DISTINCT confrelid, conrelid FROM pg_constraint WHERE contype = 'f'");
    for (std::size_t row = 0; row < references.rows(); ++row) {
        const auto referenced = oid_of(references.value(row, 0));
        const auto referencing = oid_of(references.value(row, 1));
        for (auto& t : snap.tables) {
            if (t.oid == referenced && referencing != referenced) {
                t.referenced_by.push_back(referencing);
            }
        }
    }
    auto statistics = co_await conn.exec(R"sql(
SELECT c.oid FROM pg_class c
WHERE c.oid IN ('pg_catalog.pg_statistic'::regclass, 'pg_catalog.pg_statistic_ext_data'::regclass)
UNION SELECT i.indexrelid FROM pg_index i
WHERE i.indrelid IN ('pg_catalog.pg_statistic'::regclass, 'pg_catalog.pg_statistic_ext_data'::regclass)
UNION SELECT c.reltoastrelid FROM pg_class c
WHERE c.oid IN ('pg_catalog.pg_statistic'::regclass, 'pg_catalog.pg_statistic_ext_data'::regclass)
  AND c.reltoastrelid <> 0
UNION SELECT i.indexrelid FROM pg_class c JOIN pg_index i ON i.indrelid = c.reltoastrelid
WHERE c.oid IN ('pg_catalog.pg_statistic'::regclass, 'pg_catalog.pg_statistic_ext_data'::regclass)
)sql");
    for (std::size_t row = 0; row < statistics.rows(); ++row) {
        snap.statistics_catalogs.push_back(oid_of(statistics.value(row, 0)));
    }
    auto class_catalog = co_await conn.exec(
        "SELECT 'pg_catalog.pg_class'::regclass::oid UNION SELECT indexrelid FROM pg_index "
        "WHERE indrelid = 'pg_catalog.pg_class'::regclass");
    for (std::size_t row = 0; row < class_catalog.rows(); ++row) {
        snap.class_catalog.push_back(oid_of(class_catalog.value(row, 0)));
    }
    auto signature = co_await conn.exec(class_signature_sql);
    snap.class_signature = signature.value(0, 0);

    std::ofstream manifest(dir / "manifest.json");
    manifest << to_json(snap).dump();
    manifest.close();
    if (!manifest) {
        throw std::runtime_error("cannot write " + (dir / "manifest.json").string());
    }
    co_return snap;
}

std::optional<version_snapshot> load_snapshot(const fs::path& dir) {
    std::ifstream in(dir / "manifest.json");
    if (!in) {
        return std::nullopt;
    }
    try {
        const json doc = json::parse(in);
        if (doc.value("format", 0) != 1) {
            return std::nullopt;
        }
        version_snapshot snap;
        snap.dir = dir;
        for (const auto& t : doc.at("tables")) {
            snapshot_table table;
            table.oid = t.at("oid").get<std::uint32_t>();
            table.name = t.at("name").get<std::string>();
            table.columns = t.at("columns").get<std::string>();
            table.rows = t.at("rows").get<std::uint64_t>();
            table.unlogged = t.at("unlogged").get<bool>();
            table.materialized = t.at("materialized").get<bool>();
            table.referenced_by = t.at("referenced_by").get<std::vector<std::uint32_t>>();
            if (table.rows > 0 && !fs::exists(snap.rows_file(table))) {
                return std::nullopt;
            }
            snap.tables.push_back(std::move(table));
        }
        for (const auto& q : doc.at("sequences")) {
            snap.sequences.push_back(
                {q.at("oid").get<std::uint32_t>(), q.at("name").get<std::string>(),
                 q.at("last_value").get<std::string>(), q.at("is_called").get<bool>()});
        }
        for (const auto& [part, table] : doc.at("owner_table").items()) {
            snap.owner_table[static_cast<std::uint32_t>(std::stoul(part))] =
                table.get<std::uint32_t>();
        }
        for (const auto& [rel, node] : doc.at("file_nodes").items()) {
            snap.file_nodes[static_cast<std::uint32_t>(std::stoul(rel))] =
                node.get<std::uint32_t>();
        }
        snap.statistics_catalogs = doc.at("statistics_catalogs").get<std::vector<std::uint32_t>>();
        snap.class_catalog = doc.at("class_catalog").get<std::vector<std::uint32_t>>();
        snap.class_signature = doc.at("class_signature").get<std::string>();
        return snap;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace pglease
