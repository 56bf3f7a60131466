#include "templates/client_builds.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker_error.hpp"
#include "catalog/catalog_comment.hpp"
#include "hashing/sha256.hpp"
#include "leases/lease_id.hpp"
#include "pg/connection_pool.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"
#include "pool/database_names.hpp"
#include "pool/drop_database.hpp"
#include "pool/lease_access.hpp"
#include "templates/template_builder.hpp"
#include "templates/template_set.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;
using steady = std::chrono::steady_clock;

std::string client_fingerprint(const std::string& given) {
    return sha256_hex("client\n" + given);
}

client_builds::client_builds(asio::any_io_executor executor, const backend_endpoint& endpoint,
                             std::string prefix, std::filesystem::path state_dir,
                             template_set& templates, deadline_queue& deadlines,
                             pg::connection_pool& operations, broker_metrics& metrics,
                             backend_life& life, pool_settings default_pool,
                             lease_settings default_lease, hooks wiring)
    : executor_(std::move(executor)),
      endpoint_(endpoint),
      prefix_(std::move(prefix)),
      state_dir_(std::move(state_dir)),
      templates_(templates),
      deadlines_(deadlines),
      operations_(operations),
      metrics_(metrics),
      life_(life),
      default_pool_(default_pool),
      default_lease_(default_lease),
      hooks_(std::move(wiring)) {}

template_settings client_builds::settings_for(const std::string& name) const {
    template_settings settings;
    settings.name = name;
    settings.pool = default_pool_;
    settings.lease = default_lease_;
    return settings;
}

asio::awaitable<client_template_outcome> client_builds::ensure(std::string name,
                                                               std::string fingerprint,
                                                               std::chrono::seconds wait,
                                                               std::chrono::seconds build_ttl) {
    if (const template_entry* found = templates_.find(name);
        found != nullptr && !found->client && found->settings) {
        throw broker_error("conflict", "template \"" + name +
                                           "\" is configured from its source; it cannot be "
                                           "initialized by a client");
    }
    if (!life_.up) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " is unreachable", 1s);
    }
    template_entry& entry = templates_.entry_for(name);
    if (!entry.settings) {
        entry.client = true;
        entry.settings = settings_for(name);
        entry.state = template_state::building;
    }
    const std::string internal = client_fingerprint(fingerprint);
    const auto deadline = steady::now() + wait;
    for (;;) {
        if (template_set::serving(entry, internal) != nullptr) {
            co_return client_template_outcome{true, hooks_.status(entry), std::nullopt};
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
        asio::steady_timer wakeup(executor_, deadline);
        auto& line = waiting_[name];
        line.push_back(&wakeup);
        const auto position = std::prev(line.end());
        boost::system::error_code ignored;
        co_await wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        waiting_[name].erase(position);
        if (life_.stopping) {
            throw broker_error("backend_down", "the broker is stopping", 1s);
        }
        if (steady::now() >= deadline) {
            throw broker_error("template_building",
                               "template \"" + name + "\" is being built by another caller", 1s);
        }
    }

    // This caller builds. The build is recorded before the first await, so concurrent callers
    // wait for it instead of building too.
    const auto generation = life_.generation;
    const std::string id = new_lease_id();
    const std::string database = template_database_name(prefix_, name, internal);
    entry.build = client_build{fingerprint, lease_key(id), database,
                               system_clock::now() + build_ttl, steady::now()};
    std::string failure;
    try {
        auto conn = co_await operations_.acquire();
        co_await drop_database(*conn, database);
        // The client builds it as the lease role, which alone may connect to it meanwhile.
        const clone_access access =
            access_of(&entry, endpoint_, lease_role_of(entry, endpoint_.lease_role));
        co_await conn->exec(create_template_sql(*conn, database, "template0", access));
        co_await open_template(
            *conn, pg::with_database(endpoint_.admin_conninfo, database), database, access,
            encode_catalog_comment(template_comment(name, internal, false, true)));
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != life_.generation) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " restarted", 1s);
    }
    if (!failure.empty()) {
        end_build(entry, true);
        throw broker_error("backend_down", "cannot create the template database: " + failure, 1s);
    }
    deadlines_.add(entry.build->expires_at, deadline_kind::build_expiry, name);
    spdlog::info("template={} client build of {} into {} (build lease {}s)", name, fingerprint,
                 database, build_ttl.count());
    build_info build;
    build.id = id;
    build.template_name = name;
    build.fingerprint = fingerprint;
    build.database = database;
    build.host = endpoint_.worker_host;
    build.port = endpoint_.worker_port;
    build.user = lease_role_of(entry, endpoint_.lease_role);
    build.password = lease_password_of(entry, endpoint_.lease_password);
    build.expires_at = entry.build->expires_at;
    co_return client_template_outcome{false, hooks_.status(entry), build};
}

client_build& client_builds::find_build(template_entry& entry, const std::string& fingerprint,
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

asio::awaitable<template_status> client_builds::finalize(std::string name, std::string fingerprint,
                                                         std::string build_id) {
    template_entry* found = templates_.find(name);
    if (found == nullptr || !found->client) {
        throw broker_error("unknown_build",
                           "no client-initialized template named \"" + name + "\"");
    }
    template_entry& entry = *found;
    client_build& build = find_build(entry, fingerprint, build_id);
    build.finishing = true;
    deadlines_.remove(build.expires_at, deadline_kind::build_expiry, name);
    const auto generation = life_.generation;
    const std::string database = build.database;
    const std::string internal = client_fingerprint(fingerprint);
    std::string failure;
    std::shared_ptr<const version_snapshot> snapshot;
    try {
        snapshot = co_await record_snapshot(pg::with_database(endpoint_.admin_conninfo, database),
                                            state_dir_ / database, name);
        auto conn = co_await operations_.acquire();
        // A version's idle time runs from when it is ready until a lease takes a clone.
        catalog_comment sealed = template_comment(name, internal, true, true);
        sealed.last_leased = system_clock::now();
        co_await seal_template(*conn, database, encode_catalog_comment(sealed));
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != life_.generation) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " restarted", 1s);
    }
    if (!failure.empty()) {
        end_build(entry, true);
        throw broker_error("backend_down", "cannot finalize the template: " + failure, 1s);
    }
    const std::chrono::duration<double> took = steady::now() - entry.build->started;
    metrics_.of(name).build_succeeded(took.count());
    spdlog::info("template={} client build of {} finalized", name, fingerprint);
    entry.build.reset();
    entry.state = template_state::ready;
    entry.error.clear();
    auto ready = std::make_unique<template_pool>(name, internal, database);
    ready->set_snapshot(std::move(snapshot));
    ready->last_leased = system_clock::now();
    ready->recorded_leased = ready->last_leased;
    hooks_.built(entry, std::move(ready));
    wake(name);
    co_return hooks_.status(entry);
}

void client_builds::abort(const std::string& name, const std::string& fingerprint,
                          const std::string& build_id) {
    template_entry* found = templates_.find(name);
    if (found == nullptr || !found->client) {
        throw broker_error("unknown_build",
                           "no client-initialized template named \"" + name + "\"");
    }
    find_build(*found, fingerprint, build_id);
    spdlog::info("template={} client build of {} aborted", name, fingerprint);
    end_build(*found, true);
}

void client_builds::build_expired(const std::string& name) {
    template_entry* entry = templates_.find(name);
    if (entry != nullptr && entry->build && !entry->build->finishing) {
        spdlog::info("template={} build lease expired; the next caller builds", name);
        end_build(*entry, true);
    }
}

void client_builds::end_build(template_entry& entry, bool drop_database) {
    if (!entry.build) {
        return;
    }
    deadlines_.remove(entry.build->expires_at, deadline_kind::build_expiry, entry.name);
    const std::chrono::duration<double> took = steady::now() - entry.build->started;
    metrics_.of(entry.name).build_failed(took.count());
    if (drop_database) {
        hooks_.drop_database(entry.build->database);
    }
    entry.build.reset();
    if (!entry.current) {
        entry.state = template_state::building;
    }
    wake(entry.name);
}

void client_builds::wake(const std::string& name) {
    for (asio::steady_timer* wakeup : waiting_[name]) {
        wakeup->cancel();
    }
}

void client_builds::wake_all() {
    for (auto& [name, line] : waiting_) {
        wake(name);
    }
}

}  // namespace pglease
