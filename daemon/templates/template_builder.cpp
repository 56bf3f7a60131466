#include "templates/template_builder.hpp"

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include "broker/lease_types.hpp"
#include "config/settings.hpp"
#include "pg/connection.hpp"
#include "pg/pg_error.hpp"
#include "pool/lease_access.hpp"
#include "process/child_process.hpp"
#include "templates/fingerprint.hpp"
#include "templates/version_snapshot.hpp"

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

// Schemas, relations and routines a worker may need to alter, with their owners. Objects that
// belong to an extension and the schemas PostgreSQL owns are left out, and so is anything owned
// by pg_database_owner (the public schema), since the clone's owner is the lease role.
constexpr std::string_view foreign_owned_objects = R"sql(
WITH owned (kind, name, owner, classid, objid) AS (
    SELECT 'schema', quote_ident(n.nspname), n.nspowner, 'pg_namespace'::regclass, n.oid
    FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                          ELSE 'table' END,
           format('%I.%I', n.nspname, c.relname), c.relowner, 'pg_class'::regclass, c.oid
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
    UNION ALL
    SELECT 'function', format('%I.%I(%s)', n.nspname, p.proname,
                              pg_get_function_identity_arguments(p.oid)),
           p.proowner, 'pg_proc'::regclass, p.oid
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
)
SELECT o.kind, o.name, r.rolname, r.rolsuper::text
FROM owned o JOIN pg_roles r ON r.oid = o.owner
WHERE r.rolname NOT IN ($1, 'pg_database_owner')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e')
ORDER BY r.rolname,
         array_position(ARRAY['table', 'sequence', 'view', 'materialized view', 'foreign table',
                              'schema', 'function'], o.kind),
         o.name
)sql";

std::string in_quotes(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

}  // namespace

asio::awaitable<void> check_object_owners(pg::connection& conn, const template_settings& source,
                                          const std::string& lease_role) {
    auto rows = co_await conn.query(std::string(foreign_owned_objects), lease_role);
    if (rows.rows() == 0) {
        co_return;
    }
    // Per owner: how many objects, a few of them by name, and whether it is a superuser.
    struct owner_objects {
        std::size_t count = 0;
        std::vector<std::string> examples;
        bool superuser = false;
    };
    std::map<std::string, owner_objects> by_owner;
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        auto& owner = by_owner[std::string(rows.value(row, 2))];
        owner.superuser = rows.value(row, 3) == "true";
        if (++owner.count <= 3) {
            owner.examples.push_back(std::string(rows.value(row, 0)) + " " +
                                     std::string(rows.value(row, 1)));
        }
    }
    std::string owners;
    for (const auto& [name, objects] : by_owner) {
        owners += owners.empty() ? "" : "; ";
        owners += std::to_string(objects.count) + " owned by " +
                  (objects.superuser ? "superuser " : "") + in_quotes(name) + " (";
        for (std::size_t i = 0; i < objects.examples.size(); ++i) {
            owners += (i > 0 ? ", " : "") + objects.examples[i];
        }
        owners += objects.count > objects.examples.size() ? ", …)" : ")";
    }
    const std::string path = "templates." + source.name;
    std::string advice;
    const auto& [first_owner, first_objects] = *by_owner.begin();
    if (by_owner.size() == 1 && !first_objects.superuser) {
        advice = "set " + path + ".lease_role to " + in_quotes(first_owner) + " (and " + path +
                 ".lease_password to its password) so that workers connect as the role that owns "
                 "them, or make " +
                 in_quotes(lease_role) + " their owner (REASSIGN OWNED BY " +
                 in_quotes(first_owner) + " TO " + in_quotes(lease_role) +
                 ", run in that database)";
    } else {
        advice =
            "give them one owner that is not a superuser (ALTER … OWNER TO, run in that "
            "database) and set " +
            path + ".lease_role to it (with " + path +
            ".lease_password): workers are never handed a superuser";
    }
    throw build_error(
        "database " + in_quotes(source.database) + " holds " + std::to_string(rows.rows()) +
        " objects that lease role " + in_quotes(lease_role) +
        " does not own, so workers could not alter, truncate or replace them: " + owners +
        ". To fix it, " + advice);
}

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

asio::awaitable<std::shared_ptr<const version_snapshot>> record_snapshot(
    std::string admin_conninfo, std::filesystem::path dir, std::string template_name) {
    try {
        auto conn = co_await pg::connection::connect(admin_conninfo, 30s);
        version_snapshot snapshot = co_await take_snapshot(conn, std::move(dir));
        co_return std::make_shared<const version_snapshot>(std::move(snapshot));
    } catch (const std::exception& e) {
        spdlog::warn(
            "template={} cannot record what this version holds, so its clones are "
            "cloned again rather than reset in place: {}",
            template_name, e.what());
    }
    co_return nullptr;
}

std::string create_template_sql(const pg::connection& conn, const std::string& database,
                                const std::string& source, const clone_access& access) {
    return "CREATE DATABASE " + conn.quote_identifier(database) +
           (access.per_lease ? " ALLOW_CONNECTIONS false"
                             : " OWNER " + conn.quote_identifier(access.lease_role)) +
           " TEMPLATE " + conn.quote_identifier(source);
}

asio::awaitable<void> open_template(pg::connection& conn, std::string admin_conninfo,
                                    std::string database, clone_access access,
                                    std::string comment) {
    co_await conn.exec("BEGIN; " + open_database_sql(conn, database, access) +
                       "COMMENT ON DATABASE " + conn.quote_identifier(database) + " IS " +
                       conn.quote_literal(comment) + "; COMMIT");
    if (!access.per_lease) {
        co_return;
    }
    // PostgreSQL 15 lets only the database's owner (here the admin) create in public.
    auto inside = co_await pg::connection::connect(admin_conninfo, std::chrono::seconds(30));
    co_await inside.exec(
        "DO $pglease$BEGIN IF EXISTS (SELECT FROM pg_namespace WHERE nspname = "
        "'public') THEN GRANT USAGE, CREATE ON SCHEMA public TO " +
        inside.quote_identifier(access.lease_role) + "; END IF; END$pglease$");
}

asio::awaitable<void> seal_template(pg::connection& conn, std::string database,
                                    std::string ready_comment) {
    const std::string quoted = conn.quote_identifier(database);
    co_await conn.exec("ALTER DATABASE " + quoted +
                       " WITH ALLOW_CONNECTIONS false IS_TEMPLATE true");
    // No session may stay on a template, or clones fail with "being accessed by other users".
    co_await conn.query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1",
        database);
    co_await conn.exec("COMMENT ON DATABASE " + quoted + " IS " +
                       conn.quote_literal(ready_comment));
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
