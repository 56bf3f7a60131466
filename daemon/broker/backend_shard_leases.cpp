// Leases: acquire (with FIFO waiting), renew, release, and expiry on one timer.
#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/backend_shard.hpp"
#include "broker/broker_error.hpp"
#include "leases/lease_id.hpp"
#include "logging.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

std::string short_key(const std::string& key) {
    return key.substr(0, 12);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double held_for(const lease_record& record) {
    return std::max(
        0.0, std::chrono::duration<double>(system_clock::now() - record.acquired_at).count());
}

}  // namespace

asio::awaitable<lease_info> backend_shard::acquire(std::string template_name,
                                                   acquire_request request) {
    auto found = templates_.find(template_name);
    if (found == templates_.end() || !found->second.settings) {
        throw broker_error("unknown_template", "no template named \"" + template_name + "\"");
    }
    const auto asked = std::chrono::steady_clock::now();
    template_entry& entry = found->second;
    template_metrics& metrics = metrics_.of(template_name);
    const lease_settings& limits = entry.settings->lease;
    const auto ttl =
        std::clamp(request.ttl.value_or(limits.ttl), std::chrono::seconds(1), limits.max_ttl);
    const auto give_up_at = asked + std::min(request.wait.value_or(limits.wait), limits.max_wait);
    if (!entry.current && entry.state == "failed") {
        refuse_acquire(entry);
    }
    // Each turn either leases a clone or waits for one. A turn ends without a lease only when the
    // backend restarted under it: memory was rebuilt from the catalog, and the worker, still
    // within its wait, is served from the new memory instead of being turned away.
    for (;;) {
        if (up_ && entry.current) {
            if (clone* idle = entry.current->oldest_idle()) {
                entry.current->move(*idle, clone_state::leased);
                if (auto granted = co_await grant(entry, *entry.current, *idle, request, ttl)) {
                    metrics.acquired(seconds_since(asked));
                    co_return std::move(*granted);
                }
                continue;
            }
        }
        waiter me(executor_);
        me.wakeup.expires_at(give_up_at);
        entry.waiters.push_back(&me);
        const auto position = std::prev(entry.waiters.end());
        schedule();
        boost::system::error_code ignored;
        co_await me.wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (me.granted != nullptr && me.granted_in == generation_) {
            if (auto granted = co_await grant(entry, *me.pool, *me.granted, request, ttl)) {
                metrics.acquired(seconds_since(asked));
                co_return std::move(*granted);
            }
            continue;
        }
        if (me.granted == nullptr) {
            entry.waiters.erase(position);
        }
        // A clone granted from memory that was since thrown away is the catalog's again (idle
        // there, since no lease was written): this worker waits on in the rebuilt memory.
        if (!me.give_up && !stopping_ && std::chrono::steady_clock::now() < give_up_at) {
            continue;
        }
        metrics.wait_timed_out();
        refuse_acquire(entry);
    }
}

void backend_shard::refuse_acquire(const template_entry& entry) const {
    const auto retry = std::chrono::seconds(1);
    if (!up_) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " is unreachable", retry);
    }
    if (!entry.current) {
        if (entry.state == "failed") {
            const auto until = std::chrono::duration_cast<std::chrono::seconds>(
                entry.retry_at - std::chrono::steady_clock::now());
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
    if (!has_room()) {
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

asio::awaitable<std::optional<lease_info>> backend_shard::grant(template_entry& entry,
                                                                template_pool& pool, clone& c,
                                                                const acquire_request& request,
                                                                std::chrono::seconds ttl) {
    const auto generation = generation_;
    const std::string id = new_lease_id();
    lease_record record;
    record.key = lease_key(id);
    record.owner = request.owner;
    record.labels = request.labels;
    record.acquired_at = system_clock::now();
    record.expires_at = record.acquired_at + ttl;
    c.lease_key = record.key;
    catalog_comment comment = clone_comment(pool, c);
    comment.lease = record;
    const std::string database = c.name;  // c may be gone once an await returns
    std::exception_ptr failure;
    try {
        // The catalog knows of the lease before the worker does.
        co_await write_comment(database, comment);
    } catch (...) {
        failure = std::current_exception();
    }
    if (generation != generation_) {
        co_return co_await after_restart(id, record.key, failure == nullptr);
    }
    if (failure) {
        // What the catalog now says of the clone is unknown: recycle it.
        queue_drop(pool, c);
        schedule();
        try {
            std::rethrow_exception(failure);
        } catch (const pg::pg_error& e) {
            throw broker_error("backend_down", "cannot record the lease: " + std::string(e.what()),
                               1s);
        }
    }
    auto& lease = leases_[record.key] = live_lease{record, &pool, &c};
    add_deadline(record.expires_at, deadline_kind::lease_expiry, record.key);
    spdlog::debug("template={} db={} lease={} acquired owner={} ttl={}s", entry.name, c.name,
                  short_key(record.key), record.owner, ttl.count());
    schedule();
    lease_info info = describe(lease);
    info.id = id;
    co_return info;
}

asio::awaitable<std::optional<lease_info>> backend_shard::after_restart(std::string id,
                                                                        std::string key,
                                                                        bool recorded) {
    if (!recorded) {
        co_return std::nullopt;  // the catalog has the clone as it was: no lease to honour
    }
    // The lease is in the catalog, but memory was thrown away while it was written. Once memory
    // is rebuilt, it holds the lease (it was read after the write) or the clone as idle (read
    // before it), which a later grant overwrites: the lease is handed out only in the first case.
    const auto give_up_at = std::chrono::steady_clock::now() + 30s;
    while (!up_ && !stopping_ && std::chrono::steady_clock::now() < give_up_at) {
        co_await sleep_for(50ms);
    }
    auto adopted = leases_.find(key);
    if (!up_ || adopted == leases_.end()) {
        co_return std::nullopt;
    }
    lease_info info = describe(adopted->second);
    info.id = std::move(id);
    co_return info;
}

asio::awaitable<lease_info> backend_shard::renew(std::string key,
                                                 std::optional<std::chrono::seconds> ttl) {
    auto found = leases_.find(key);
    if (found == leases_.end()) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    live_lease& lease = found->second;
    const auto& entry = templates_.at(lease.pool->template_name());
    const lease_settings limits = entry.settings ? entry.settings->lease : config_.default_lease;
    const auto extension =
        std::clamp(ttl.value_or(limits.ttl), std::chrono::seconds(1), limits.max_ttl);
    remove_deadline(lease.record.expires_at, deadline_kind::lease_expiry, key);
    lease.record.expires_at = system_clock::now() + extension;
    add_deadline(lease.record.expires_at, deadline_kind::lease_expiry, key);
    catalog_comment comment = clone_comment(*lease.pool, *lease.db);
    comment.lease = lease.record;
    const std::string database = lease.db->name;
    const lease_info info = describe(lease);
    try {
        co_await write_comment(database, comment);
    } catch (const pg::pg_error& e) {
        throw broker_error("backend_down", "cannot record the renewal: " + std::string(e.what()),
                           1s);
    }
    metrics_.of(info.template_name).renewed();
    spdlog::debug("db={} lease={} renewed for {}s", database, short_key(key), extension.count());
    co_return info;
}

asio::awaitable<void> backend_shard::release(std::string key, release_mode mode,
                                             std::optional<std::chrono::seconds> keep_for) {
    auto found = leases_.find(key);
    if (found == leases_.end()) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    const live_lease lease = found->second;
    leases_.erase(found);
    remove_deadline(lease.record.expires_at, deadline_kind::lease_expiry, key);
    const auto generation = generation_;
    template_pool& pool = *lease.pool;
    clone& c = *lease.db;
    const std::string database = c.name;  // c may be gone once an await returns
    const auto& entry = templates_.at(pool.template_name());
    const lease_settings limits = entry.settings ? entry.settings->lease : config_.default_lease;
    metrics_.of(pool.template_name()).released(mode, held_for(lease.record));
    spdlog::debug("template={} db={} lease={} released mode={}", pool.template_name(), c.name,
                  short_key(key),
                  mode == release_mode::reuse  ? "reuse"
                  : mode == release_mode::keep ? "keep"
                                               : "recycle");

    if (mode == release_mode::reuse && pool.current_phase() == template_pool::phase::ready) {
        bool clean = true;
        try {
            // The next worker gets a database nobody is still connected to.
            const catalog_comment idle = clone_comment(pool, c);
            co_await terminate_sessions(database);
            co_await write_comment(database, idle);
        } catch (const pg::pg_error& e) {
            warn_limited("reuse_failed backend=" + endpoint_.name,
                         "template={} db={} cannot be reused, recycling it: {}",
                         pool.template_name(), database, e.what());
            clean = false;
        }
        if (generation != generation_) {
            co_return;
        }
        if (clean) {
            became_idle(pool, c);
        } else {
            queue_drop(pool, c);
        }
        schedule();
        co_return;
    }
    if (mode == release_mode::keep) {
        const auto keep =
            std::clamp(keep_for.value_or(limits.keep), std::chrono::seconds(1), limits.max_keep);
        pool.move(c, clone_state::kept);
        c.kept_until = system_clock::now() + keep;
        kept_[c.name] = &pool;
        add_deadline(*c.kept_until, deadline_kind::keep_expiry, c.name);
        try {
            co_await write_comment(database, clone_comment(pool, c));
        } catch (const pg::pg_error& e) {
            warn_limited("catalog_write_failed backend=" + endpoint_.name,
                         "db={} kept, but the catalog could not record it: {}", database, e.what());
        }
        co_return;
    }
    // recycle: mark it released first, so that a restart drops it rather than honouring the lease.
    pool.move(c, clone_state::dropping);
    catalog_comment comment = clone_comment(pool, c);
    comment.released = true;
    try {
        co_await write_comment(database, comment);
    } catch (const pg::pg_error& e) {
        warn_limited("catalog_write_failed backend=" + endpoint_.name,
                     "db={} released, but the catalog could not record it: {}", database, e.what());
    }
    if (generation != generation_) {
        co_return;
    }
    drop_queue_.emplace_back(&pool, database);
    schedule();
}

asio::awaitable<void> backend_shard::terminate_sessions(std::string database) {
    auto conn = co_await catalog_->acquire();
    co_await conn->query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        database);
}

lease_info backend_shard::describe(const live_lease& lease) const {
    lease_info info;
    info.key = lease.record.key;
    info.template_name = lease.pool->template_name();
    info.fingerprint = lease.pool->fingerprint();
    info.database = lease.db->name;
    info.host = endpoint_.worker_host;
    info.port = endpoint_.worker_port;
    const template_entry& entry = templates_.at(info.template_name);
    info.user = lease_role_of(entry);
    info.password = lease_password_of(entry);
    info.owner = lease.record.owner;
    info.labels = lease.record.labels;
    info.acquired_at = lease.record.acquired_at;
    info.expires_at = lease.record.expires_at;
    info.backend = endpoint_.name;
    return info;
}

std::optional<lease_info> backend_shard::find_lease(const std::string& key) const {
    auto found = leases_.find(key);
    if (found == leases_.end()) {
        return std::nullopt;
    }
    return describe(found->second);
}

std::vector<lease_info> backend_shard::leases() const {
    std::vector<lease_info> all;
    all.reserve(leases_.size());
    for (const auto& [key, lease] : leases_) {
        all.push_back(describe(lease));
    }
    return all;
}

void backend_shard::add_deadline(system_clock::time_point when, deadline_kind kind,
                                 const std::string& key) {
    const bool earliest = deadlines_.empty() || when < std::get<0>(*deadlines_.begin());
    deadlines_.emplace(when, kind, key);
    if (earliest) {
        deadline_timer_.cancel();  // re-arm for the new earliest deadline
    }
}

void backend_shard::remove_deadline(system_clock::time_point when, deadline_kind kind,
                                    const std::string& key) {
    deadlines_.erase(deadline{when, kind, key});
}

asio::awaitable<void> backend_shard::run_deadlines() {
    // One timer for every lease and kept clone, armed for the earliest: nothing runs while
    // nothing is due.
    while (!stopping_) {
        const auto next =
            deadlines_.empty() ? system_clock::now() + 24h : std::get<0>(*deadlines_.begin());
        deadline_timer_.expires_at(next);
        boost::system::error_code ignored;
        co_await deadline_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        const auto now = system_clock::now();
        while (!stopping_ && up_ && !deadlines_.empty() &&
               std::get<0>(*deadlines_.begin()) <= now) {
            const deadline due = *deadlines_.begin();
            deadlines_.erase(deadlines_.begin());
            expire(std::get<1>(due), std::get<2>(due));
        }
    }
}

void backend_shard::expire(deadline_kind kind, const std::string& key) {
    if (kind == deadline_kind::surplus_trim) {
        if (auto found = templates_.find(key); found != templates_.end()) {
            found->second.trim_check_pending = false;
        }
        schedule();  // trims the surplus if it lasted
        return;
    }
    if (kind == deadline_kind::build_expiry) {
        auto found = templates_.find(key);
        if (found != templates_.end() && found->second.build && !found->second.build->finishing) {
            spdlog::info("template={} build lease expired; the next caller builds", key);
            end_build(found->second, true);
            schedule();
        }
        return;
    }
    if (kind == deadline_kind::keep_expiry) {
        auto found = kept_.find(key);
        if (found == kept_.end()) {
            return;
        }
        template_pool* pool = found->second;
        kept_.erase(found);
        if (clone* c = pool->find(key); c != nullptr && c->state == clone_state::kept) {
            spdlog::info("template={} db={} keep time over; dropping", pool->template_name(), key);
            queue_drop(*pool, *c);
            schedule();
        }
        return;
    }
    auto found = leases_.find(key);
    if (found == leases_.end()) {
        return;
    }
    const live_lease lease = found->second;
    leases_.erase(found);
    metrics_.of(lease.pool->template_name()).expired(held_for(lease.record));
    spdlog::info("template={} db={} lease={} expired (owner={}); recycling",
                 lease.pool->template_name(), lease.db->name, short_key(key), lease.record.owner);
    // Sessions go at once; the drop (which would also end them) may wait behind clones.
    ++background_tasks_;
    asio::co_spawn(executor_, terminate_sessions(lease.db->name),
                   [this](const std::exception_ptr&) { --background_tasks_; });
    queue_drop(*lease.pool, *lease.db);
    schedule();
}

std::vector<std::string> backend_shard::template_names() const {
    std::vector<std::string> names;
    for (const auto& [name, entry] : templates_) {
        if (entry.settings) {
            names.push_back(name);
        }
    }
    return names;
}

std::size_t backend_shard::idle_clones(const std::string& template_name) const {
    auto found = templates_.find(template_name);
    return found != templates_.end() && found->second.current
               ? found->second.current->count(clone_state::idle)
               : 0;
}

std::optional<template_status> backend_shard::status(const std::string& template_name) const {
    auto found = templates_.find(template_name);
    if (found == templates_.end()) {
        return std::nullopt;
    }
    const template_entry& entry = found->second;
    template_status status;
    status.name = entry.name;
    status.source = entry.client                                    ? "client"
                    : !entry.settings                               ? "migrations"
                    : entry.settings->kind == source_kind::database ? "database"
                    : entry.settings->kind == source_kind::command  ? "command"
                                                                    : "migrations";
    status.state = entry.state;
    status.error = entry.error;
    if (entry.current) {
        status.fingerprint = entry.current->fingerprint();
    }
    const auto add = [&](const template_pool& pool) {
        status.pool.idle += pool.count(clone_state::idle);
        status.pool.leased += pool.count(clone_state::leased);
        status.pool.creating += pool.count(clone_state::creating);
        status.pool.dropping += pool.count(clone_state::dropping);
        status.pool.kept += pool.count(clone_state::kept);
    };
    if (entry.current) {
        add(*entry.current);
    }
    for (const auto& pool : entry.draining) {
        add(*pool);
    }
    status.pool.waiters = entry.waiters.size();
    const lease_settings& limits = entry.settings ? entry.settings->lease : config_.default_lease;
    status.max_ttl = limits.max_ttl;
    status.max_wait = limits.max_wait;
    status.max_keep = limits.max_keep;
    if (entry.settings) {
        status.pool.min_idle = entry.settings->pool.min_idle;
        status.pool.max_total = entry.settings->pool.max_total;
    }
    return status;
}

}  // namespace pglease
