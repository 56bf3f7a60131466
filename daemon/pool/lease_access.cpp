#include "pool/lease_access.hpp"

#include <spdlog/spdlog.h>

#include "broker/backend_endpoint.hpp"
#include "hashing/scram.hpp"
#include "pg/connection.hpp"
#include "pg/pg_error.hpp"
#include "templates/template_set.hpp"

namespace pglease {

namespace {

constexpr std::size_t role_key_chars = 24;

// The oid of the role named `name`, or NULL, as SQL (a ::regrole cast fails on a missing role).
std::string role_oid(const pg::connection& conn, const std::string& name) {
    return "(SELECT oid FROM pg_roles WHERE rolname = " + conn.quote_literal(name) + ")";
}

}  // namespace

std::string lease_role_prefix(std::string_view database_prefix) {
    return std::string(database_prefix) + "lease_";
}

std::string lease_role_name(std::string_view prefix, std::string_view key) {
    return std::string(prefix) + std::string(key.substr(0, role_key_chars));
}

std::string per_lease_role(const backend_endpoint& endpoint, std::string_view key) {
    return endpoint.lease_role_prefix.empty() ? std::string()
                                              : lease_role_name(endpoint.lease_role_prefix, key);
}

clone_access access_of(const template_entry* entry, const backend_endpoint& endpoint,
                       std::string connect_role) {
    clone_access access;
    access.lease_role =
        entry != nullptr ? lease_role_of(*entry, endpoint.lease_role) : endpoint.lease_role;
    access.per_lease = !endpoint.lease_role_prefix.empty();
    access.connect_role = std::move(connect_role);
    return access;
}

std::string open_database_sql(const pg::connection& conn, const std::string& database,
                              const clone_access& access) {
    if (!access.per_lease) {
        return "";
    }
    const std::string quoted = conn.quote_identifier(database);
    std::string sql = "REVOKE CONNECT ON DATABASE " + quoted + " FROM PUBLIC;\nGRANT CREATE ON " +
                      "DATABASE " + quoted + " TO " + conn.quote_identifier(access.lease_role) +
                      ";\n";
    if (!access.connect_role.empty()) {
        sql += "GRANT CONNECT ON DATABASE " + quoted + " TO " +
               conn.quote_identifier(access.connect_role) + ";\n";
    }
    return sql + "ALTER DATABASE " + quoted + " WITH ALLOW_CONNECTIONS true;\n";
}

std::string create_lease_role_sql(const pg::connection& conn, const std::string& role,
                                  const std::string& password, const std::string& lease_role,
                                  const std::string& database) {
    const std::string quoted = conn.quote_identifier(role);
    const std::string group = conn.quote_identifier(lease_role);
    return "CREATE ROLE " + quoted + " LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD " +
           conn.quote_literal(scram_sha256_secret(password, generated_password_iterations)) +
           // The admin, a member, may end its sessions (a non-superuser needs that).
           " IN ROLE " + group + " ROLE CURRENT_USER;\nALTER ROLE " + quoted + " SET role TO " +
           group + ";\nGRANT CONNECT ON DATABASE " + conn.quote_identifier(database) + " TO " +
           quoted + ";\n";
}

std::string revoke_lease_role_sql(const pg::connection& conn, const std::string& role,
                                  const std::string& database) {
    return "REVOKE CONNECT ON DATABASE " + conn.quote_identifier(database) + " FROM " +
           conn.quote_identifier(role) + ";\n";
}

std::string drop_lease_role_sql(const pg::connection& conn, const std::string& role) {
    const std::string name = conn.quote_literal(role);
    // Two blocks: the rights to connect go even when the role itself cannot.
    return "DO $pglease$DECLARE d text; BEGIN\n"
           "  FOR d IN SELECT db.datname FROM pg_shdepend s JOIN pg_database db ON db.oid = "
           "s.objid\n"
           "    WHERE s.classid = 'pg_database'::regclass AND s.deptype = 'a' AND s.refobjid = " +
           role_oid(conn, role) +
           " LOOP\n"
           "    EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', d, " +
           name +
           ");\n"
           "  END LOOP;\n"
           "END$pglease$;\n"
           "DO $pglease$BEGIN\n"
           "  IF EXISTS (SELECT FROM pg_roles WHERE rolname = " +
           name +
           ") THEN\n"
           "    EXECUTE format('DROP ROLE %I', " +
           name +
           ");\n"
           "  END IF;\n"
           "EXCEPTION WHEN dependent_objects_still_exist THEN\n"
           "  RAISE NOTICE 'lease role % still owns objects or holds privileges', " +
           name +
           ";\n"
           "END$pglease$;\n";
}

std::string privileges_as_given_sql(const pg::connection& conn, const clone_access& access) {
    if (!access.per_lease) {
        return "datacl IS NULL";
    }
    std::string allowed =
        "a.grantee = datdba OR (a.grantee = 0 AND a.privilege_type = "
        "'TEMPORARY') OR (a.privilege_type = 'CREATE' AND a.grantee = " +
        role_oid(conn, access.lease_role) + ")";
    if (!access.connect_role.empty()) {
        allowed += " OR (a.privilege_type = 'CONNECT' AND a.grantee = " +
                   role_oid(conn, access.connect_role) + ")";
    }
    return "datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND datacl IS NOT "
           "NULL AND NOT EXISTS (SELECT FROM "
           "aclexplode(datacl) a WHERE NOT (" +
           allowed + "))";
}

boost::asio::awaitable<std::size_t> sweep_lease_roles(pg::connection& conn, std::string prefix,
                                                      std::function<std::set<std::string>()> live) {
    auto roles = co_await conn.query(
        "SELECT r.rolname FROM pg_roles r WHERE starts_with(r.rolname, $1) AND "
        "substr(r.rolname, length($1) + 1) ~ '^[0-9a-f]{24}$' AND NOT EXISTS "
        "(SELECT FROM pg_stat_get_activity(NULL) a WHERE a.usesysid = r.oid)",
        prefix);
    // Read now: a grant whose role the listing shows is in the lease table, or being granted.
    const std::set<std::string> keep = live();
    std::size_t dropped = 0;
    for (std::size_t row = 0; row < roles.rows(); ++row) {
        const std::string role(roles.value(row, 0));
        if (keep.contains(role)) {
            continue;
        }
        co_await conn.exec(drop_lease_role_sql(conn, role));
        auto left = co_await conn.query("SELECT 1 FROM pg_roles WHERE rolname = $1", role);
        if (left.rows() == 0) {
            ++dropped;
        } else {
            // Asked again at each sweep: rare, and cheap.
            spdlog::debug(
                "lease role {} of no live lease still owns objects or holds privileges "
                "in a database; it stays until that database is dropped",
                role);
        }
    }
    co_return dropped;
}

}  // namespace pglease
