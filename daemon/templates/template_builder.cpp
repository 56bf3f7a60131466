#include "templates/template_builder.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

#include <spdlog/spdlog.h>

#include "broker/lease_types.hpp"
#include "config/settings.hpp"
#include "pg/connection.hpp"
#include "pg/pg_error.hpp"
#include "process/child_process.hpp"
#include "templates/fingerprint.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw build_error("cannot read migration " + file.string());
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

asio::awaitable<void> apply_migrations(const template_settings& source,
                                       const build_target& target) {
    std::vector<std::filesystem::path> files;
    try {
        files = migration_files(source.migrations);
    } catch (const std::runtime_error& e) {
        throw build_error(e.what());
    }
    auto conn = co_await pg::connection::connect(target.admin_conninfo, 30s);
    const auto timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(source.build_timeout);
    co_await conn.exec("SET ROLE " + conn.quote_identifier(target.lease_role));
    for (const auto& file : files) {
        const std::string sql = read_file(file);
        const std::string name = file.filename().string();
        try {
            co_await conn.exec("BEGIN");
            co_await conn.exec(sql, timeout);
            co_await conn.exec("COMMIT");
        } catch (const pg::pg_error& e) {
            std::string reason = e.message();
            if (!e.sqlstate().empty()) {
                reason += " (SQLSTATE " + e.sqlstate() + ")";
            }
            throw build_error("migration " + name + " failed: " + reason);
        }
        spdlog::debug("template={} db={} applied migration {}", source.name, target.database, name);
    }
}

asio::awaitable<void> run_migration_command(const template_settings& source,
                                            const build_target& target) {
    const std::string port = std::to_string(target.port);
    lease_info as_worker;
    as_worker.host = target.host;
    as_worker.port = target.port;
    as_worker.user = target.lease_role;
    as_worker.password = target.lease_password;
    as_worker.database = target.database;
    const std::string dsn = as_worker.dsn();
    child_options options;
    options.working_dir = target.working_dir;
    options.environment = {
        {"DATABASE_URL", dsn},
        {"PGHOST", target.host},
        {"PGPORT", port},
        {"PGUSER", target.lease_role},
        {"PGPASSWORD", target.lease_password},
        {"PGDATABASE", target.database},
    };
    std::vector<std::string> args{"-c", source.command};
    const auto timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(source.build_timeout);
    command_result outcome;
    try {
        outcome = co_await run_command("/bin/sh", std::move(args), std::move(options), timeout);
    } catch (const command_timeout& e) {
        throw build_error("command `" + source.command + "`: " + e.what());
    } catch (const std::system_error& e) {
        throw build_error("command `" + source.command + "`: " + e.what());
    }
    std::istringstream lines(outcome.output);
    for (std::string line; std::getline(lines, line);) {
        spdlog::info("template={} command: {}", source.name, line);
    }
    if (outcome.exit_code != 0) {
        std::string tail = outcome.output.size() > 2000
                               ? outcome.output.substr(outcome.output.size() - 2000)
                               : outcome.output;
        throw build_error("command `" + source.command + "` exited with status " +
                          std::to_string(outcome.exit_code) + ": " + tail);
    }
}

asio::awaitable<std::string> schema_fingerprint(pg::connection& conn) {
    auto digest = co_await conn.exec(R"sql(
SELECT encode(sha256(convert_to(coalesce(string_agg(item, E'\n' ORDER BY item), ''), 'UTF8')), 'hex')
FROM (
    SELECT format('column %s.%s.%s %s %s %s', table_schema, table_name, column_name, data_type,
                  is_nullable, column_default) AS item
    FROM information_schema.columns
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT format('index %s', indexdef) FROM pg_indexes
    WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT format('constraint %s %s', conname, pg_get_constraintdef(c.oid))
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT format('function %s.%s(%s) %s', n.nspname, p.proname,
                  pg_get_function_identity_arguments(p.oid), md5(p.prosrc))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
) AS schema_items
)sql");
    co_return std::string(digest.value(0, 0));
}

}  // namespace pglease
