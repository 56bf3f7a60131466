#include "leases/lease_desk.hpp"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker_error.hpp"
#include "catalog/catalog_writer.hpp"
#include "leases/lease_desk_detail.hpp"
#include "leases/lease_id.hpp"
#include "logging.hpp"
#include "pg/pg_error.hpp"
#include "pool/lease_access.hpp"
#include "pool/recycler.hpp"
#include "pool/session_ender.hpp"
#include "templates/client_builds.hpp"
#include "templates/template_set.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;
using steady = std::chrono::steady_clock;
using namespace lease_desk_detail;

lease_desk::lease_desk(asio::any_io_executor executor, const backend_endpoint& endpoint,
                       template_set& templates, lease_table& leases, waiting_line& waiting,
                       catalog_writer& catalog, recycler& recycling, session_ender& sessions,
                       broker_metrics& metrics, backend_life& life, lease_settings default_lease,
                       hooks wiring)
    : executor_(std::move(executor)),
      endpoint_(endpoint),
      templates_(templates),
      leases_(leases),
      waiting_(waiting),
      catalog_(catalog),
      recycler_(recycling),
      sessions_(sessions),
      metrics_(metrics),
      life_(life),
      default_lease_(default_lease),
      hooks_(std::move(wiring)) {}

lease_settings lease_desk::limits_of(const std::string& template_name) const {
    const template_entry* entry = templates_.find(template_name);
    return entry != nullptr && entry->settings ? entry->settings->lease : default_lease_;
}

asio::awaitable<lease_info> lease_desk::acquire(std::string template_name,
                                                acquire_request request) {
    template_entry* found = templates_.find(template_name);
    if (found == nullptr || !found->settings) {
        throw broker_error("unknown_template", "no template named \"" + template_name + "\"");
    }
    const auto asked = steady::now();
    template_entry& entry = *found;
    template_metrics& metrics = metrics_.of(template_name);
    const lease_settings& limits = entry.settings->lease;
    const auto ttl =
        std::clamp(request.ttl.value_or(limits.ttl), std::chrono::seconds(1), limits.max_ttl);
    const auto give_up_at = asked + std::min(request.wait.value_or(limits.wait), limits.max_wait);
    if (!entry.current && entry.state == template_state::failed) {
        refuse(entry);
    }
    // The version asked for by fingerprint (as the client gave it, or as the template reports
    // it), found again every turn: it may be evicted or replaced while this worker waits.
    const std::string& named = request.fingerprint;
    const auto version = [&]() -> template_pool* {
        if (named.empty()) {
            return entry.current.get();
        }
        template_pool* pool = template_set::serving(entry, named);
        return pool != nullptr || !entry.client
                   ? pool
                   : template_set::serving(entry, client_fingerprint(named));
    };
    // A worker naming a version waits in that version's line, whatever becomes the newest.
    std::string line = template_name;
    if (!named.empty()) {
        if (!life_.up) {
            refuse(entry);  // backend_down: which versions it has is read again when it is back
        }
        const template_pool* asked_for = version();
        if (asked_for == nullptr) {
            refuse_version(entry, named);
        }
        line = waiting_line::version_line(template_name, asked_for->fingerprint());
    }
    // Each turn either leases a clone or waits for one. A turn ends without a lease only when the
    // backend restarted under it: memory was rebuilt from the catalog, and the worker, still
    // within its wait, is served from the new memory instead of being turned away.
    for (;;) {
        template_pool* pool = life_.up ? version() : nullptr;
        if (pool != nullptr) {
            if (clone* idle = pool->oldest_idle()) {
                pool->move(*idle, clone_state::leased);
                if (auto granted = co_await grant(entry, *pool, *idle, request, ttl)) {
                    metrics.acquired(seconds_since(asked));
                    co_return std::move(*granted);
                }
                continue;
            }
        } else if (!named.empty() && life_.up) {
            refuse_version(entry, named);  // evicted while this worker waited
        }
        waiter me(executor_);
        me.wakeup.expires_at(give_up_at);
        const auto position = waiting_.join(line, me);
        hooks_.changed();
        boost::system::error_code ignored;
        co_await me.wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (me.granted != nullptr && me.granted_in == life_.generation) {
            if (auto granted = co_await grant(entry, *me.pool, *me.granted, request, ttl)) {
                metrics.acquired(seconds_since(asked));
                co_return std::move(*granted);
            }
            continue;
        }
        if (me.granted == nullptr) {
            waiting_.leave(line, position);
        }
        // A clone granted from memory that was since thrown away is the catalog's again (idle
        // there, since no lease was written): this worker waits on in the rebuilt memory.
        if (!me.give_up && !life_.stopping && steady::now() < give_up_at) {
            continue;
        }
        metrics.wait_timed_out();
        refuse(entry);
    }
}

void lease_desk::refuse_version(const template_entry& entry, const std::string& named) const {
    const bool building =
        (entry.build && (entry.build->fingerprint == named ||
                         client_fingerprint(entry.build->fingerprint) == named)) ||
        (entry.building && entry.wanted_fingerprint == named);
    if (building) {
        throw broker_error(
            "template_building",
            "version " + named + " of template \"" + entry.name + "\" is still being built",
            std::chrono::seconds(1));
    }
    throw broker_error("unknown_version", "template \"" + entry.name + "\" has no version " +
                                              named + " (never built, or evicted)");
}

void lease_desk::refuse(const template_entry& entry) const {
    const auto retry = std::chrono::seconds(1);
    if (!life_.up) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " is unreachable", retry);
    }
    if (!entry.current) {
        if (entry.state == template_state::failed) {
            const auto until =
                std::chrono::duration_cast<std::chrono::seconds>(entry.retry_at - steady::now());
            throw broker_error("template_failed",
                               "template \"" + entry.name + "\" failed to build: " + entry.error,
                               std::max(until, retry));
        }
        throw broker_error("template_building",
                           "template \"" + entry.name + "\" is still being built", retry);
    }
    const auto max_total = static_cast<std::size_t>(entry.settings->pool.max_total);
    if (entry.current->size() >= max_total) {
        throw broker_error("pool_exhausted",
                           "pool of \"" + entry.name + "\" is at max_total (" +
                               std::to_string(max_total) +
                               " databases, those being dropped included) and none became free",
                           retry);
    }
    if (!hooks_.has_room()) {
        throw broker_error("pool_exhausted",
                           "backend " + endpoint_.name + " holds max_databases (" +
                               std::to_string(endpoint_.max_databases) + ") databases",
                           retry);
    }
    throw broker_error("pool_exhausted",
                       "no clone of \"" + entry.name +
                           "\" became ready in time (clones are "
                           "being created; try a longer wait)",
                       retry);
}

asio::awaitable<std::optional<lease_info>> lease_desk::grant(template_entry& entry,
                                                             template_pool& pool, clone& c,
                                                             const acquire_request& request,
                                                             std::chrono::seconds ttl) {
    const auto generation = life_.generation;
    const std::string id = new_lease_id();
    lease_record record;
    record.key = lease_key(id);
    record.owner = request.owner;
    record.labels = request.labels;
    record.acquired_at = system_clock::now();
    record.expires_at = record.acquired_at + ttl;
    catalog_comment comment = clone_comment(pool.template_name(), pool.fingerprint(), std::nullopt);
    comment.lease = record;
    comment.baseline = c.baseline;        // a restart must still know where its next reset starts
    const std::string database = c.name;  // c may be gone once an await returns
    std::exception_ptr failure;
    const std::string role_name = role_of(record.key);  // "" without per-lease roles
    try {
        // The catalog knows of the lease before the worker does (and the server of its role).
        catalog_writer::statements role = role_granted(id, entry, database);
        granting_roles_.insert(role_name);
        co_await catalog_.write(database, comment, false, std::move(role));
    } catch (...) {
        failure = std::current_exception();
    }
    granting_roles_.erase(role_name);
    if (generation != life_.generation) {
        co_return co_await after_restart(id, record.key, failure == nullptr);
    }
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const fenced_error& e) {
            // Nothing was written, and the backend may be another broker's now: its clone is
            // not this broker's to drop.
            pool.move(c, clone_state::idle);
            throw broker_error("backend_down", e.what(), 1s);
        } catch (...) {
        }
        // What the catalog now says of the clone is unknown: it goes.
        hooks_.drop(pool, c);
        hooks_.changed();
        try {
            std::rethrow_exception(failure);
        } catch (const pg::pg_error& e) {
            throw broker_error("backend_down", "cannot record the lease: " + std::string(e.what()),
                               1s);
        }
    }
    const live_lease& lease = leases_.add(record, pool, c);
    note_leased(entry, pool, record.acquired_at);
    spdlog::debug("template={} db={} lease={} acquired owner={} ttl={}s", entry.name, database,
                  short_key(record.key), record.owner, ttl.count());
    hooks_.changed();
    lease_info info = describe(lease);
    info.identify(id);
    co_return info;
}

asio::awaitable<std::optional<lease_info>> lease_desk::after_restart(std::string id,
                                                                     std::string key,
                                                                     bool recorded) {
    if (!recorded) {
        co_return std::nullopt;  // the catalog has the clone as it was: no lease to honour
    }
    // The lease is in the catalog, but memory was thrown away while it was written. Once memory
    // is rebuilt, it holds the lease (it was read after the write) or the clone as idle (read
    // before it), which a later grant overwrites: the lease is handed out only in the first case.
    const auto give_up_at = steady::now() + 30s;
    while (!life_.up && !life_.stopping && steady::now() < give_up_at) {
        co_await pause_for(50ms);
    }
    const live_lease* adopted = leases_.find(key);
    if (!life_.up || adopted == nullptr) {
        co_return std::nullopt;
    }
    lease_info info = describe(*adopted);
    info.identify(std::move(id));
    co_return info;
}

void lease_desk::note_leased(const template_entry& entry, template_pool& pool,
                             system_clock::time_point at) {
    pool.last_leased = at;
    if (!entry.client || pool.template_database().empty()) {
        return;
    }
    // The template database's comment keeps when its version was last leased, for eviction
    // after a restart: coarsely, a write every tenth of the idle time at most.
    const auto every =
        std::clamp<std::chrono::seconds>(entry.settings->pool.version_idle / 10, 1s, 60s);
    if (at - pool.recorded_leased < every) {
        return;
    }
    pool.recorded_leased = at;
    catalog_comment comment =
        template_comment(pool.template_name(), pool.fingerprint(), true, true);
    comment.last_leased = at;
    spawn_background(executor_, life_, record_leased(pool.template_database(), comment),
                     endpoint_.name, "catalog write");
}

asio::awaitable<void> lease_desk::record_leased(std::string database, catalog_comment comment) {
    try {
        co_await catalog_.write(std::move(database), std::move(comment));
    } catch (const pg::pg_error& e) {
        spdlog::debug("db={} last lease time not recorded: {}", database, e.what());
    }
}

void lease_desk::offer(template_pool& pool, clone& c) {
    if (pool.current_phase() == template_pool::phase::draining) {
        // Its version was replaced meanwhile (a reuse or a clone that took a while).
        hooks_.drop(pool, c);
        return;
    }
    pool.move(c, clone_state::idle);
    const template_entry* entry = templates_.find(pool.template_name());
    if (entry != nullptr) {
        waiting_.hand_over(pool, c, entry->current.get() == &pool, life_.generation);
    }
}

void lease_desk::serve_waiters() {
    for (auto& [name, entry] : templates_.entries()) {
        for (template_pool* pool : template_set::serving(entry)) {
            const bool newest = pool == entry.current.get();
            while (waiting_.count_for(*pool, newest) > 0) {
                clone* idle = pool->oldest_idle();
                if (idle == nullptr) {
                    break;
                }
                waiting_.hand_over(*pool, *idle, newest, life_.generation);
            }
        }
    }
}

std::string lease_desk::role_of(const std::string& key) const {
    return per_lease_role(endpoint_, key);
}

catalog_writer::statements lease_desk::role_granted(const std::string& id,
                                                    const template_entry& entry,
                                                    const std::string& database) const {
    if (endpoint_.lease_role_prefix.empty()) {
        return {};
    }
    return
        [role = role_of(lease_key(id)), password = lease_role_password(id),
         group = lease_role_of(entry, endpoint_.lease_role), database](const pg::connection& conn) {
            return create_lease_role_sql(conn, role, password, group, database);
        };
}

catalog_writer::statements lease_desk::role_revoked(std::string role, std::string database) {
    if (role.empty()) {
        return {};
    }
    return [role = std::move(role), database = std::move(database)](const pg::connection& conn) {
        return revoke_lease_role_sql(conn, role, database);
    };
}

std::set<std::string> lease_desk::live_roles() const {
    std::set<std::string> live = granting_roles_;  // may hold "": no role has that name
    for (const auto& [key, lease] : leases_.all()) {
        live.insert(role_of(key));
    }
    for (const auto& [name, pool] : leases_.kept()) {
        if (const clone* c = pool->find(name); c != nullptr) {
            live.insert(c->lease_role);
        }
    }
    return live;
}

lease_info lease_desk::describe(const live_lease& lease) const {
    lease_info info;
    info.key = lease.record.key;
    info.template_name = lease.pool->template_name();
    info.fingerprint = lease.pool->fingerprint();
    info.database = lease.db->name;
    info.host = endpoint_.worker_host;
    info.port = endpoint_.worker_port;
    const template_entry* entry = templates_.find(info.template_name);
    if (!endpoint_.lease_role_prefix.empty()) {
        info.user = role_of(lease.record.key);
        info.own_role = true;  // its password comes with the id (lease_info::identify)
    } else {
        info.user =
            entry != nullptr ? lease_role_of(*entry, endpoint_.lease_role) : endpoint_.lease_role;
        info.password = entry != nullptr ? lease_password_of(*entry, endpoint_.lease_password)
                                         : endpoint_.lease_password;
    }
    info.owner = lease.record.owner;
    info.labels = lease.record.labels;
    info.acquired_at = lease.record.acquired_at;
    info.expires_at = lease.record.expires_at;
    info.backend = endpoint_.name;
    return info;
}

std::optional<lease_info> lease_desk::find(const std::string& key) const {
    const live_lease* lease = leases_.find(key);
    if (lease == nullptr) {
        return std::nullopt;
    }
    return describe(*lease);
}

std::vector<lease_info> lease_desk::all() const {
    std::vector<lease_info> described;
    described.reserve(leases_.size());
    for (const auto& [key, lease] : leases_.all()) {
        described.push_back(describe(lease));
    }
    return described;
}

}  // namespace pglease
