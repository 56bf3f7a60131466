#include "broker/lease_roles.hpp"

#include <spdlog/spdlog.h>

#include "hashing/scram.hpp"
#include "pg/connection.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

boost::asio::awaitable<void> ensure_lease_roles(
    pg::connection& conn, const backend_endpoint& endpoint,
    const std::map<std::string, template_settings>& templates) {
    const std::string role = conn.quote_identifier(endpoint.lease_role);
    auto exists =
        co_await conn.query("SELECT 1 FROM pg_roles WHERE rolname = $1", endpoint.lease_role);
    const std::string password =
        endpoint.lease_password.empty() ? ""
        : endpoint.lease_password_generated
            ? " PASSWORD " + conn.quote_literal(scram_sha256_secret(endpoint.lease_password,
                                                                    generated_password_iterations))
            : " PASSWORD " + conn.quote_literal(endpoint.lease_password);
    if (exists.rows() == 0) {
        co_await conn.exec("CREATE ROLE " + role + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE" +
                           password);
        spdlog::info("backend={} created lease role {}", endpoint.name, endpoint.lease_role);
    } else if (!password.empty()) {
        try {
            co_await conn.exec("ALTER ROLE " + role + " LOGIN" + password);
        } catch (const pg::server_error& e) {
            spdlog::warn("backend={} cannot set the password of lease role {}: {}", endpoint.name,
                         endpoint.lease_role, e.what());
        }
    }
    // A non-superuser admin must be a member of the lease role to create databases it owns and to
    // run migrations as it.
    auto super = co_await conn.exec(
        "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user");
    if (!endpoint.lease_role_prefix.empty() && super.value(0, 0) != "t" &&
        super.value(0, 1) != "t") {
        spdlog::error(
            "backend={} has per_lease_roles, but its admin role has neither SUPERUSER "
            "nor CREATEROLE: every lease will fail until it has CREATEROLE",
            endpoint.name);
    }
    if (super.value(0, 0) == "t") {
        co_return;
    }
    co_await conn.exec("GRANT " + role + " TO CURRENT_USER");
    // The same holds for the roles that templates of their own hand out (a database source's
    // owner): they exist already, and the admin may lack the right to grant them.
    for (const auto& [name, settings] : templates) {
        if (settings.lease_role.empty() || settings.lease_role == endpoint.lease_role) {
            continue;
        }
        auto member = co_await conn.query(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1",
            settings.lease_role);
        if (member.rows() == 0 || member.value(0, 0) == "t") {
            continue;
        }
        try {
            co_await conn.exec("GRANT " + conn.quote_identifier(settings.lease_role) +
                               " TO CURRENT_USER");
        } catch (const pg::server_error& e) {
            spdlog::warn(
                "backend={} template={} cannot make the admin a member of lease role {}, so its "
                "clones cannot be given to that role: {}",
                endpoint.name, name, settings.lease_role, e.what());
        }
    }
}

}  // namespace pglease
