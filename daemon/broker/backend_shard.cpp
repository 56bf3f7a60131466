// The shard's life: composing its parts, taking the backend, supervising it, losing and
// regaining it; and its API, which each part answers.
#include "broker/backend_shard.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/lease_roles.hpp"
#include "broker/shard_parts.hpp"
#include "leases/lease_id.hpp"
#include "logging.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Catalog writes that queue while these are busy go together in one round trip.
constexpr std::size_t catalog_connections = 3;

// A random advisory lock key for one lock session (from 128 random bits of a lease id), unlike
// any other broker's: see catalog_writer::fence.
std::int64_t fence_key() {
    const std::string random = new_lease_id();
    return static_cast<std::int64_t>(std::stoull(random.substr(0, 15), nullptr, 16));
}

}  // namespace

backend_shard::parts::parts(const asio::any_io_executor& executor, const backend_endpoint& endpoint,
                            const shard_config& config, broker_metrics& metrics, backend_life& life)
    : operations(endpoint.admin_conninfo,
                 static_cast<std::size_t>(endpoint.max_parallel_clones) + 2, 30s),
      // Their commits reach the server's WAL before the answer, whatever the server's default
      // (the embedded cluster's is off): a lease lost in a backend crash would leave its clone
      // looking idle, for the next worker to be handed too.
      catalog(pg::with_session_setting(endpoint.admin_conninfo, "synchronous_commit", "local"),
              catalog_connections, 10s),
      sessions(endpoint.admin_conninfo, 2, 10s),
      maintenance(endpoint.admin_conninfo, 2, 10s),
      deadlines(executor),
      templates(config.templates, [&metrics](const std::string& name) { metrics.of(name); }),
      leases(deadlines),
      writer(executor, catalog, catalog_connections, life, endpoint.name),
      ender(sessions),
      pool(executor, endpoint, config.prefix, templates, deadlines, metrics, operations, life,
           {[this](template_pool& p, clone& c) { desk.offer(p, c); },
            [this](const template_pool& p, bool newest) { return waiting.count_for(p, newest); },
            [dir = config.state_dir](const std::string& database) {
                // What a version recorded for resets in place goes with its template database.
                std::error_code ignored;
                std::filesystem::remove_all(dir / database, ignored);
            }}),
      recloning(pool, operations, endpoint, templates),
      roles(executor, endpoint, maintenance, life, [this] { return desk.live_roles(); }),
      recycling(executor, endpoint, templates, writer, ender, maintenance, recloning, metrics, life,
                {[this](template_pool& p, clone& c) {
                    desk.offer(p, c);
                    pool.schedule();
                }}),
      desk(executor, endpoint, templates, leases, waiting, writer, recycling, ender, metrics, life,
           config.default_lease,
           {[this] { pool.schedule(); }, [this](template_pool& p, clone& c) { pool.drop(p, c); },
            [this] { return pool.has_room(); }, [this] { roles.soon(); }}),
      sources(executor, endpoint, config.prefix, config.working_dir, config.state_dir, templates,
              operations, metrics, life,
              {[this](template_entry& e, std::unique_ptr<template_pool> ready) {
                   promote(e, std::move(ready));
               },
               [this](template_entry& e) { waiting.give_up(e.name); },
               [this](std::string name) { pool.drop_database(std::move(name)); },
               [this] { pool.schedule(); }}),
      clients(executor, endpoint, config.prefix, config.state_dir, templates, deadlines, operations,
              metrics, life, config.default_pool, config.default_lease,
              {[this](template_entry& e, std::unique_ptr<template_pool> ready) {
                   promote(e, std::move(ready));
               },
               [this](std::string name) { pool.drop_database(std::move(name)); },
               [this](const template_entry& e) { return status_of(e); }}),
      watch_timer(executor),
      default_lease(config.default_lease) {}

void backend_shard::parts::promote(template_entry& entry, std::unique_ptr<template_pool> ready) {
    if (template_pool* replaced = templates.promote(entry, std::move(ready))) {
        std::vector<clone*> idle(replaced->in_state(clone_state::idle).begin(),
                                 replaced->in_state(clone_state::idle).end());
        for (clone* c : idle) {
            pool.drop(*replaced, *c);
        }
    }
    for (auto& database : templates.retire_empty()) {
        pool.drop_database(std::move(database));
    }
    pool.schedule();
}

template_status backend_shard::parts::status_of(const template_entry& entry) const {
    return templates.status(entry, waiting.count_all(entry.name), default_lease);
}

backend_shard::backend_shard(asio::any_io_executor executor, backend_endpoint endpoint,
                             shard_config config, broker_metrics& metrics)
    : executor_(std::move(executor)),
      endpoint_(std::move(endpoint)),
      config_(std::move(config)),
      metrics_(metrics),
      parts_(std::make_unique<parts>(executor_, endpoint_, config_, metrics_, life_)) {}

backend_shard::~backend_shard() = default;

asio::awaitable<void> backend_shard::start() {
    co_await take_lock();
    {
        auto conn = co_await parts_->catalog.acquire();
        co_await ensure_lease_roles(*conn, endpoint_, config_.templates);
    }
    co_await check_resets();
    co_await reconcile();
    life_.up = true;
    catalog_read_ = true;
    spdlog::info("backend={} up: {} templates, {} leases adopted", endpoint_.name,
                 config_.templates.size(), parts_->leases.size());
    spawn_background(executor_, life_,
                     parts_->deadlines.run([this](const deadline& due) { on_deadline(due); },
                                           [this] { return life_.up && !life_.stopping; }),
                     endpoint_.name, "expiry timer");
    spawn_background(executor_, life_, supervise(), endpoint_.name, "supervisor");
    co_await parts_->sources.watch();
    parts_->pool.schedule();
}

asio::awaitable<void> backend_shard::stop() {
    life_.stopping = true;
    parts_->deadlines.stop();
    parts_->watch_timer.cancel();
    parts_->waiting.give_up_all();
    parts_->clients.wake_all();
    // Background work holds pointers into this shard: wait until all of it has ended.
    for (int i = 0; life_.background_tasks > 0 && i < 3000; ++i) {
        asio::steady_timer pause(executor_, 10ms);
        boost::system::error_code ignored;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    if (life_.background_tasks > 0) {
        spdlog::warn("backend={} {} background tasks still running at stop", endpoint_.name,
                     life_.background_tasks);
    }
    if (lock_connection_) {
        lock_connection_->close();
    }
    life_.up = false;
}

void backend_shard::on_deadline(const deadline& due) {
    switch (due.kind) {
        case deadline_kind::lease_expiry:
            parts_->desk.lease_expired(due.key);
            break;
        case deadline_kind::keep_expiry:
            parts_->desk.keep_expired(due.key);
            break;
        case deadline_kind::build_expiry:
            parts_->clients.build_expired(due.key);
            parts_->pool.schedule();
            break;
        case deadline_kind::surplus_trim:
            parts_->pool.surplus_due(due.key);
            break;
    }
}

asio::awaitable<bool> backend_shard::try_take_lock() {
    if (!lock_connection_ || !lock_connection_->usable()) {
        lock_connection_ = co_await pg::connection::connect(endpoint_.admin_conninfo, 10s);
        // A broker whose machine vanishes must free the lock within seconds, not after the
        // server's keepalive defaults (hours): the server probes this session's client.
        co_await lock_connection_->exec(
            "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
            "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000");
    }
    // One broker per backend and prefix: the lock lives as long as this session.
    auto taken = co_await lock_connection_->query(
        "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", "pglease:" + config_.prefix);
    if (taken.value(0, 0) != "t") {
        co_return false;
    }
    // Every catalog write from now on commits only while this session lives (and holds the
    // backend's lock): it also holds a key of its own, which a catalog write could take only
    // once the session is gone. A broker whose lock session died writes nothing, even before it
    // notices.
    const std::int64_t session_key = fence_key();
    co_await lock_connection_->query("SELECT pg_advisory_lock($1::bigint)",
                                     std::to_string(session_key));
    parts_->writer.fence(session_key, [this] { parts_->watch_timer.cancel(); });
    co_return true;
}

asio::awaitable<void> backend_shard::take_lock() {
    bool announced = false;
    for (;;) {
        bool taken = false;
        try {
            taken = co_await try_take_lock();
            standby_ = !taken;
        } catch (const pg::pg_error& e) {
            if (!announced) {
                throw;  // at start: an unreachable backend is reported as such
            }
            // A standby outlives a restart of the backend it waits for.
            warn_limited("standby_reconnect backend=" + endpoint_.name,
                         "backend={} lost while waiting as standby; connecting again: {}",
                         endpoint_.name, e.what());
        }
        if (taken) {
            if (announced) {
                spdlog::info("backend={} the other broker let go; taking over", endpoint_.name);
                if (endpoint_.lease_password_generated && !endpoint_.pgdata) {
                    spdlog::warn(
                        "backend={} the lease role's password was generated by this broker: "
                        "DSNs the other broker handed out no longer log in; give both the same "
                        "lease_password",
                        endpoint_.name);
                }
            }
            co_return;
        }
        if (!announced) {
            spdlog::warn(
                "backend={} another pglease broker holds this backend (prefix {}); waiting as "
                "standby",
                endpoint_.name, config_.prefix);
            announced = true;
        }
        if (life_.stopping) {
            throw std::runtime_error("stopped while waiting for the backend's lock");
        }
        asio::steady_timer pause(executor_, 1s);
        boost::system::error_code ignored;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
}

asio::awaitable<void> backend_shard::supervise() {
    while (!life_.stopping) {
        parts_->watch_timer.expires_after(config_.watch_interval);
        boost::system::error_code ignored;
        co_await parts_->watch_timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (life_.stopping) {
            co_return;
        }
        bool alive = true;
        try {
            co_await lock_connection_->exec("SELECT 1", 10s);
        } catch (const pg::timeout_error& e) {
            // A slow server, not a lost one, while the session (and with it the lock) lives on:
            // memory still holds what the catalog says, so there is nothing to rebuild.
            alive = lock_connection_->usable();
            warn_limited("backend_slow backend=" + endpoint_.name, "backend={} {}: {}",
                         endpoint_.name, alive ? "slow to answer" : "lost", e.what());
        } catch (const pg::pg_error& e) {
            warn_limited("backend_lost backend=" + endpoint_.name, "backend={} lost: {}",
                         endpoint_.name, e.what());
            alive = false;
        }
        if (alive) {
            co_await parts_->sources.watch();
            parts_->pool.schedule();  // versions idle for their time are evicted
            continue;
        }
        // Sessions are gone and with them the lock: forget memory and rebuild it from the catalog.
        life_.up = false;
        forget_state();
        while (!life_.stopping) {
            try {
                co_await take_lock();
                {
                    auto conn = co_await parts_->catalog.acquire();
                    co_await ensure_lease_roles(*conn, endpoint_, config_.templates);
                }
                co_await check_resets();
                // Clones and drops started before the loss may still be running (a slow server
                // rather than a dead one): the catalog is read once they are done, or a CREATE
                // DATABASE committing after the read would leave a database nobody counts.
                for (const auto until = std::chrono::steady_clock::now() + 60s;
                     parts_->pool.running() > 0 && std::chrono::steady_clock::now() < until;) {
                    asio::steady_timer settle(executor_, 50ms);
                    co_await settle.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
                }
                co_await reconcile();
                life_.up = true;
                spdlog::info("backend={} back: {} leases adopted", endpoint_.name,
                             parts_->leases.size());
                parts_->deadlines.wake();
                co_await parts_->sources.watch();
                parts_->pool.schedule();
                break;
            } catch (const std::exception& e) {
                warn_limited("backend_unreachable backend=" + endpoint_.name,
                             "backend={} still unreachable: {}", endpoint_.name, e.what());
            }
            asio::steady_timer pause(executor_, 1s);
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
    }
}

void backend_shard::forget_state() {
    ++life_.generation;
    parts_->templates.forget();
    parts_->clients.wake_all();
    parts_->leases.clear();
    parts_->deadlines.clear();
    parts_->pool.forget();
    parts_->recycling.forget();
    parts_->operations.clear_idle();
    parts_->catalog.clear_idle();
    parts_->sessions.clear_idle();
    parts_->maintenance.clear_idle();
}

asio::awaitable<lease_info> backend_shard::acquire(std::string template_name,
                                                   acquire_request request) {
    co_return co_await parts_->desk.acquire(std::move(template_name), std::move(request));
}

asio::awaitable<lease_info> backend_shard::renew(std::string key,
                                                 std::optional<std::chrono::seconds> ttl) {
    co_return co_await parts_->desk.renew(std::move(key), ttl);
}

asio::awaitable<void> backend_shard::release(std::string key, release_mode mode,
                                             std::optional<std::chrono::seconds> keep_for) {
    co_await parts_->desk.release(std::move(key), mode, keep_for);
}

asio::awaitable<reset_answer> backend_shard::reset(std::string key) {
    auto [lease, outcome] = co_await parts_->desk.reset(std::move(key));
    reset_answer answer;
    answer.lease = std::move(lease);
    answer.result = std::move(outcome.result);
    answer.reason = std::move(outcome.reason);
    co_return answer;
}

asio::awaitable<void> backend_shard::check_resets() {
    // A reset reads the WAL (pg_walinspect) and loads rows with triggers and foreign key checks
    // off (session_replication_role): both take a superuser.
    auto conn = co_await parts_->maintenance.acquire();
    auto super = co_await conn->exec("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
    if (super.value(0, 0) != "t") {
        parts_->recycling.set_available(false, "the admin role is not a superuser");
        co_return;
    }
    std::string problem;
    try {
        co_await conn->exec("CREATE EXTENSION IF NOT EXISTS pg_walinspect");
    } catch (const pg::server_error& e) {
        problem = e.what();
    }
    parts_->recycling.set_available(problem.empty(), "pg_walinspect is not available: " + problem);
}

asio::awaitable<client_template_outcome> backend_shard::ensure_client_template(
    std::string name, std::string fingerprint, std::chrono::seconds wait,
    std::chrono::seconds build_ttl) {
    co_return co_await parts_->clients.ensure(std::move(name), std::move(fingerprint), wait,
                                              build_ttl);
}

asio::awaitable<template_status> backend_shard::finalize_build(std::string name,
                                                               std::string fingerprint,
                                                               std::string build_id) {
    co_return co_await parts_->clients.finalize(std::move(name), std::move(fingerprint),
                                                std::move(build_id));
}

asio::awaitable<void> backend_shard::abort_build(std::string name, std::string fingerprint,
                                                 std::string build_id) {
    parts_->clients.abort(name, fingerprint, build_id);
    parts_->pool.schedule();
    co_return;
}

std::optional<lease_info> backend_shard::find_lease(const std::string& key) const {
    return parts_->desk.find(key);
}

std::vector<lease_info> backend_shard::leases() const {
    return parts_->desk.all();
}

std::optional<template_status> backend_shard::status(const std::string& template_name) const {
    const template_entry* entry = parts_->templates.find(template_name);
    if (entry == nullptr) {
        return std::nullopt;
    }
    return parts_->status_of(*entry);
}

std::vector<std::string> backend_shard::template_names() const {
    std::vector<std::string> names;
    for (const auto& [name, entry] : parts_->templates.entries()) {
        if (entry.settings) {
            names.push_back(name);
        }
    }
    return names;
}

std::size_t backend_shard::idle_clones(const std::string& template_name) const {
    const template_entry* entry = parts_->templates.find(template_name);
    return entry != nullptr && entry->current ? entry->current->count(clone_state::idle) : 0;
}

std::size_t backend_shard::managed_databases() const noexcept {
    return parts_->pool.databases();
}

backend_status backend_shard::backend_state() const {
    backend_status state;
    state.name = endpoint_.name;
    state.up = life_.up;
    state.admin_connections = (lock_connection_ ? 1 : 0) + parts_->operations.open() +
                              parts_->catalog.open() + parts_->sessions.open();
    state.databases = managed_databases();
    state.max_databases = endpoint_.max_databases;
    state.operations_in_progress = parts_->pool.in_flight();
    state.max_parallel_clones = endpoint_.max_parallel_clones;
    state.orphans = orphans_;
    return state;
}

}  // namespace pglease
