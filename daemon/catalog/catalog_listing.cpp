#include "catalog/catalog_listing.hpp"

#include <spdlog/spdlog.h>

#include "pg/connection.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

namespace asio = boost::asio;

asio::awaitable<std::vector<listed_database>> read_listing(pg::connection& conn,
                                                           const std::string& prefix) {
    auto rows = co_await conn.query(
        "SELECT d.oid::text, d.datname, d.datconnlimit, sd.description, "
        "  pg_get_userbyid(d.datdba) "
        "FROM pg_database d LEFT JOIN pg_shdescription sd "
        "  ON sd.objoid = d.oid AND sd.classoid = 'pg_database'::regclass "
        "WHERE starts_with(d.datname, $1) ORDER BY d.datname",
        prefix);
    std::vector<listed_database> listing;
    listing.reserve(rows.rows());
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        listed_database db;
        db.oid = std::stoul(std::string(rows.value(row, 0)));
        db.name = rows.value(row, 1);
        db.invalid = rows.value(row, 2) == "-2";
        if (!rows.is_null(row, 3)) {
            db.comment = decode_catalog_comment(rows.value(row, 3));
        }
        db.owner = rows.value(row, 4);
        listing.push_back(std::move(db));
    }
    co_return listing;
}

asio::awaitable<std::set<std::string>> database_oids(pg::connection& conn) {
    auto rows = co_await conn.exec("SELECT oid::text FROM pg_database");
    std::set<std::string> oids;
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        oids.emplace(rows.value(row, 0));
    }
    co_return oids;
}

void remove_orphaned_files(const std::filesystem::path& pgdata,
                           const std::set<std::string>& live_oids, const std::string& backend) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(pgdata / "base", ec)) {
        const std::string oid = entry.path().filename().string();
        if (oid.empty() || oid.find_first_not_of("0123456789") != std::string::npos ||
            live_oids.contains(oid)) {
            continue;
        }
        std::error_code removed;
        const auto bytes = fs::remove_all(entry.path(), removed);
        spdlog::info("backend={} removed {} ({} files) left by an interrupted CREATE DATABASE{}",
                     backend, entry.path().string(), bytes,
                     removed ? ": " + removed.message() : "");
    }
}

asio::awaitable<std::optional<orphan_files>> find_orphaned_files(pg::connection& conn,
                                                                 std::string& refusal) {
    // Directories under base/ that no database owns, with their files and bytes. Someone
    // else's CREATE DATABASE running right now would be counted too (its row is not committed).
    static constexpr const char* orphans_sql = R"sql(
SELECT d.name, count(f.file), coalesce(sum((pg_stat_file('base/' || d.name || '/' || f.file,
                                                         true)).size), 0)::text
FROM pg_ls_dir('base') AS d(name)
LEFT JOIN LATERAL pg_ls_dir('base/' || d.name, true, false) AS f(file) ON true
WHERE d.name ~ '^[0-9]{1,10}$'
  AND NOT EXISTS (SELECT 1 FROM pg_database WHERE oid::text = d.name)
GROUP BY d.name ORDER BY d.name
)sql";
    pg::result rows;
    try {
        rows = co_await conn.exec(orphans_sql);
    } catch (const pg::server_error& e) {
        refusal = e.message();
        co_return std::nullopt;
    }
    orphan_files found;
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        ++found.directories;
        found.files += std::stoull(std::string(rows.value(row, 1)));
        found.bytes += std::stoull(std::string(rows.value(row, 2)));
        found.names.push_back("base/" + std::string(rows.value(row, 0)));
    }
    co_return found;
}

}  // namespace pglease
