#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <libpq-fe.h>

// What every scenario of the benchmark shares: the templates, the test body, libpq in a few lines.
namespace pglease::bench {

/// A libpq connection, closed when dropped.
using pg_connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

/// Opens a connection; throws std::runtime_error with libpq's message when it fails.
pg_connection connect(const std::string& conninfo);

/// Runs `sql` (one or more statements); returns the first column of the first row of the last
/// result ("" when it has none). Throws std::runtime_error with the server's message.
std::string exec(PGconn* conn, const std::string& sql);

/// A template to pool: migration files (name, SQL), applied in order.
struct template_spec {
    std::string name;
    std::string description;
    std::vector<std::pair<std::string, std::string>> migrations;
};

/// About 20 tables chained by foreign keys, with indexes, sequences and a trigger; no rows.
template_spec small_template();
/// The small template's tables plus 130 more with indexes, and about 50 MB of rows.
template_spec medium_template();

/// Writes the migration files into `dir` (created), readable by every user.
void write_migrations(const template_spec& spec, const std::filesystem::path& dir);

/// The test each iteration runs: a few inserts and a select that must see exactly its own rows
/// with the template's trigger applied; throws when the database is not fresh or is incomplete.
/// With `rolled_back` it runs in a transaction that rolls back.
void run_test_body(PGconn* conn, bool rolled_back);

}  // namespace pglease::bench
