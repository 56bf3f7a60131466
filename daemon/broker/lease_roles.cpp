#include "broker/lease_roles.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "hashing/scram.hpp"
#include "pg/connection.hpp"
#include "pg/connection_pool.hpp"
#include "pg/pg_error.hpp"
#include "pool/lease_access.hpp"

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

lease_role_sweeper::lease_role_sweeper(boost::asio::any_io_executor executor,
                                       const backend_endpoint& endpoint,
                                       pg::connection_pool& connections, backend_life& life,
                                       std::function<std::set<std::string>()> live)
    : executor_(std::move(executor)),
      endpoint_(endpoint),
      connections_(connections),
      life_(life),
      live_(std::move(live)) {}

void lease_role_sweeper::soon() {
    if (endpoint_.lease_role_prefix.empty() || pending_) {
        return;
    }
    pending_ = true;
    spawn_background(executor_, life_, later(), endpoint_.name, "lease role sweep");
}

boost::asio::awaitable<void> lease_role_sweeper::later() {
    boost::asio::steady_timer pause(executor_, std::chrono::milliseconds(500));
    boost::system::error_code ignored;
    co_await pause.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    pending_ = false;
    if (!life_.up || life_.stopping) {
        co_return;  // the next reconcile sweeps
    }
    try {
        auto conn = co_await connections_.acquire();
        co_await sweep(*conn);
    } catch (const pg::pg_error& e) {
        spdlog::debug("backend={} lease roles not swept now: {}", endpoint_.name, e.what());
    }
}

boost::asio::awaitable<std::size_t> lease_role_sweeper::sweep(pg::connection& conn) {
    if (endpoint_.lease_role_prefix.empty()) {
        co_return 0;
    }
    co_return co_await sweep_lease_roles(conn, endpoint_.lease_role_prefix, live_);
}

}  // namespace pglease
