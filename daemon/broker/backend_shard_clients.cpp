// Client-initialized templates: one caller builds a version, the others wait for it.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/backend_shard.hpp"
#include "broker/broker_error.hpp"
#include "hashing/sha256.hpp"
#include "leases/lease_id.hpp"
#include "pg/pg_error.hpp"
#include "pool/database_names.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;

std::string backend_shard::client_fingerprint(const std::string& given) {
    return sha256_hex("client\n" + given);
}

template_settings backend_shard::client_settings(const std::string& name) const {
    template_settings settings;
    settings.name = name;
    settings.pool = config_.default_pool;
    settings.lease = config_.default_lease;
    return settings;
}

asio::awaitable<client_template_outcome> backend_shard::ensure_client_template(
    std::string name, std::string fingerprint, std::chrono::seconds wait,
    std::chrono::seconds build_ttl) {
    if (auto found = templates_.find(name);
        found != templates_.end() && !found->second.client && found->second.settings) {
        throw broker_error("conflict", "template \"" + name +
                                           "\" is configured from its source; it cannot be "
                                           "initialized by a client");
    }
    if (!up_) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " is unreachable", 1s);
    }
    template_entry& entry = entry_for(name);
    if (!entry.settings) {
        entry.client = true;
        entry.settings = client_settings(name);
        entry.state = "building";
    }
    const std::string internal = client_fingerprint(fingerprint);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (entry.current && entry.current->fingerprint() == internal) {
            co_return client_template_outcome{true, *status(name), std::nullopt};
        }
        if (entry.build && entry.build->expires_at <= system_clock::now() &&
            !entry.build->finishing) {
            spdlog::info("template={} build of {} expired; the next caller builds", name,
                         entry.build->fingerprint);
            end_build(entry, true);
        }
        if (!entry.build) {
            break;
        }
        // Someone builds (this fingerprint or another): wait for the outcome.
        waiter me(executor_);
        me.wakeup.expires_at(deadline);
        entry.build_waiters.push_back(&me);
        const auto position = std::prev(entry.build_waiters.end());
        boost::system::error_code ignored;
        co_await me.wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        entry.build_waiters.erase(position);
        if (stopping_) {
            throw broker_error("backend_down", "the broker is stopping", 1s);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            throw broker_error("template_building",
                               "template \"" + name + "\" is being built by another caller", 1s);
        }
    }

    // This caller builds. The build is recorded before the first await, so concurrent callers
    // wait for it instead of building too.
    const auto generation = generation_;
    const std::string id = new_lease_id();
    const std::string database = template_database_name(config_.prefix, name, internal);
    entry.build = client_build{fingerprint, lease_key(id), database,
                               system_clock::now() + build_ttl, std::chrono::steady_clock::now()};
    std::string failure;
    try {
        auto conn = co_await operations_->acquire();
        const std::string quoted = conn->quote_identifier(database);
        co_await drop_database(*conn, database, false);
        co_await conn->exec("CREATE DATABASE " + quoted + " OWNER " +
                            conn->quote_identifier(lease_role_of(entry)) + " TEMPLATE template0");
        co_await conn->exec("COMMENT ON DATABASE " + quoted + " IS " +
                            conn->quote_literal(encode_catalog_comment(
                                template_comment(name, internal, false, true))));
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != generation_) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " restarted", 1s);
    }
    if (!failure.empty()) {
        end_build(entry, true);
        throw broker_error("backend_down", "cannot create the template database: " + failure, 1s);
    }
    add_deadline(entry.build->expires_at, deadline_kind::build_expiry, name);
    spdlog::info("template={} client build of {} into {} (build lease {}s)", name, fingerprint,
                 database, build_ttl.count());
    build_info build;
    build.id = id;
    build.template_name = name;
    build.fingerprint = fingerprint;
    build.database = database;
    build.host = endpoint_.worker_host;
    build.port = endpoint_.worker_port;
    build.user = lease_role_of(entry);
    build.password = lease_password_of(entry);
    build.expires_at = entry.build->expires_at;
    co_return client_template_outcome{false, *status(name), build};
}

backend_shard::client_build& backend_shard::find_build(template_entry& entry,
                                                       const std::string& fingerprint,
                                                       const std::string& build_id) {
    if (!entry.build || entry.build->finishing || entry.build->fingerprint != fingerprint ||
        !is_lease_id(build_id) || entry.build->key != lease_key(build_id)) {
        throw broker_error("unknown_build", "no build of \"" + entry.name +
                                                "\" with fingerprint \"" + fingerprint +
                                                "\" and that build id (it was "
                                                "finalized, aborted or expired)");
    }
    return *entry.build;
}

asio::awaitable<template_status> backend_shard::finalize_build(std::string name,
                                                               std::string fingerprint,
                                                               std::string build_id) {
    auto found = templates_.find(name);
    if (found == templates_.end() || !found->second.client) {
        throw broker_error("unknown_build",
                           "no client-initialized template named \"" + name + "\"");
    }
    template_entry& entry = found->second;
    client_build& build = find_build(entry, fingerprint, build_id);
    build.finishing = true;
    remove_deadline(build.expires_at, deadline_kind::build_expiry, name);
    const auto generation = generation_;
    const std::string database = build.database;
    const std::string internal = client_fingerprint(fingerprint);
    std::string failure;
    try {
        co_await seal_template(database, name, internal, true);
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != generation_) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " restarted", 1s);
    }
    if (!failure.empty()) {
        end_build(entry, true);
        throw broker_error("backend_down", "cannot finalize the template: " + failure, 1s);
    }
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - entry.build->started;
    metrics_.of(name).build_succeeded(took.count());
    spdlog::info("template={} client build of {} finalized", name, fingerprint);
    entry.build.reset();
    entry.state = "ready";
    entry.error.clear();
    promote(entry, std::make_unique<template_pool>(name, internal, database));
    for (waiter* w : entry.build_waiters) {
        w->wakeup.cancel();
    }
    schedule();
    co_return *status(name);
}

asio::awaitable<void> backend_shard::abort_build(std::string name, std::string fingerprint,
                                                 std::string build_id) {
    auto found = templates_.find(name);
    if (found == templates_.end() || !found->second.client) {
        throw broker_error("unknown_build",
                           "no client-initialized template named \"" + name + "\"");
    }
    template_entry& entry = found->second;
    find_build(entry, fingerprint, build_id);
    spdlog::info("template={} client build of {} aborted", name, fingerprint);
    end_build(entry, true);
    schedule();
    co_return;
}

void backend_shard::end_build(template_entry& entry, bool drop_database) {
    if (!entry.build) {
        return;
    }
    remove_deadline(entry.build->expires_at, deadline_kind::build_expiry, entry.name);
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - entry.build->started;
    metrics_.of(entry.name).build_failed(took.count());
    if (drop_database) {
        template_drop_queue_.push_back(entry.build->database);
    }
    entry.build.reset();
    if (!entry.current) {
        entry.state = "building";
    }
    for (waiter* w : entry.build_waiters) {
        w->wakeup.cancel();
    }
}

}  // namespace pglease
