#include "pool/pool_operations.hpp"

#include <set>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/backoff.hpp"
#include "catalog/catalog_comment.hpp"
#include "logging.hpp"
#include "pg/connection_pool.hpp"
#include "pg/pg_error.hpp"
#include "pool/clone_database.hpp"
#include "pool/database_names.hpp"
#include "pool/drop_database.hpp"
#include "pool/refill_rule.hpp"
#include "templates/template_set.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// After a failed clone or drop, the backend gets a rest: 1 s, 2 s ... up to 30 s.
std::chrono::seconds operation_backoff(int failures) {
    return doubling_backoff(failures, 30s);
}

asio::awaitable<void> sleep_until(steady::time_point when) {
    asio::steady_timer timer(co_await asio::this_coro::executor, when);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace

pool_operations::pool_operations(asio::any_io_executor executor, const backend_endpoint& endpoint,
                                 std::string prefix, template_set& templates,
                                 deadline_queue& deadlines, broker_metrics& metrics,
                                 pg::connection_pool& connections, backend_life& life, hooks wiring)
    : executor_(std::move(executor)),
      endpoint_(endpoint),
      prefix_(std::move(prefix)),
      templates_(templates),
      deadlines_(deadlines),
      metrics_(metrics),
      connections_(connections),
      life_(life),
      hooks_(std::move(wiring)) {}

void pool_operations::drop(template_pool& pool, clone& c) {
    pool.move(c, clone_state::dropping);
    clone_drops_.emplace_back(&pool, c.name);
}

void pool_operations::drop_database(std::string name) {
    database_drops_.push_back(std::move(name));
}

std::size_t pool_operations::databases() const noexcept {
    return templates_.databases() + database_drops_.size();
}

bool pool_operations::has_room() const noexcept {
    return databases() < static_cast<std::size_t>(endpoint_.max_databases);
}

void pool_operations::forget() noexcept {
    clone_drops_.clear();
    database_drops_.clear();
    surplus_.clear();  // their deadlines go with the queue's
    in_flight_ = 0;
}

void pool_operations::surplus_due(const std::string& key) {
    surplus_[key].check_pending = false;
    schedule();  // trims the surplus if it lasted
}

namespace {

// The warm target of `pool`: a version of a client-initialized template that no lease took for
// its idle time keeps none (its leases, if any, still return clones to it).
std::size_t warm_target(const template_entry& entry, const template_pool& pool,
                        std::chrono::system_clock::time_point now) {
    const pool_settings& settings = entry.settings->pool;
    if (entry.client && now - pool.last_leased >= settings.version_idle) {
        return 0;
    }
    return static_cast<std::size_t>(settings.min_idle);
}

// Surplus watches are kept per version.
std::string surplus_key(const template_pool& pool) {
    return pool.template_name() + "/" + pool.fingerprint();
}

}  // namespace

pool_demand pool_operations::demand_of(const template_entry& entry,
                                       const template_pool& pool) const {
    return {pool.count(clone_state::idle),
            pool.count(clone_state::creating) + pool.count(clone_state::resetting),
            pool.size(),
            hooks_.waiters(pool, &pool == entry.current.get()),
            warm_target(entry, pool, std::chrono::system_clock::now()),
            static_cast<std::size_t>(entry.settings->pool.max_total)};
}

template_pool* pool_operations::pool_needing(bool for_waiters) {
    for (auto& [name, entry] : templates_.entries()) {
        if (!entry.settings) {
            continue;
        }
        for (template_pool* pool : template_set::serving(entry)) {
            const refill_need need = needs_clone(demand_of(entry, *pool));
            if (for_waiters ? need == refill_need::for_waiters : need != refill_need::none) {
                return pool;
            }
        }
    }
    return nullptr;
}

void pool_operations::trim_surpluses() {
    // After a burst, idle clones beyond the warm target only hold disk: they go once the
    // surplus has lasted its grace (a deadline comes back for it; nothing polls).
    const auto now = std::chrono::system_clock::now();
    std::set<std::string> watched;
    for (auto& [name, entry] : templates_.entries()) {
        if (!entry.settings) {
            continue;
        }
        for (template_pool* pool : template_set::serving(entry)) {
            const std::string key = surplus_key(*pool);
            watched.insert(key);
            auto& watch = surplus_[key];
            const pool_demand demand = demand_of(entry, *pool);
            const surplus_verdict verdict = judge_surplus(demand, watch.since, now);
            watch.since = verdict.since;
            if (verdict.check_at && !watch.check_pending) {
                watch.check_pending = true;
                deadlines_.add(*verdict.check_at, deadline_kind::surplus_trim, key);
            }
            while (verdict.trim && pool->count(clone_state::idle) > demand.min_idle) {
                drop(*pool, *pool->in_state(clone_state::idle).back());
            }
        }
    }
    std::erase_if(surplus_, [&](const auto& watch) {
        return !watched.contains(watch.first) && !watch.second.check_pending;
    });
}

void pool_operations::schedule() {
    if (!life_.up || life_.stopping) {
        return;
    }
    evict_idle_versions();
    trim_surpluses();
    const bool paused = steady::now() < paused_until_;
    while (in_flight_ < endpoint_.max_parallel_clones && !paused) {
        // Clones that serve waiting workers go first (room is made for them by evicting the
        // least recently leased version nobody holds); drops only free disk (and room under the
        // caps, so they go next); then the pools are warmed to min_idle.
        template_pool* wanted = pool_needing(true);
        if (wanted != nullptr && !has_room()) {
            make_room(*wanted);
        }
        if (wanted != nullptr && has_room()) {
            launch(create_clone(*wanted));
        } else if (!database_drops_.empty()) {
            std::string name = std::move(database_drops_.front());
            database_drops_.erase(database_drops_.begin());
            launch(drop_other(std::move(name)));
        } else if (!clone_drops_.empty()) {
            auto [pool, name] = std::move(clone_drops_.front());
            clone_drops_.pop_front();
            launch(drop_clone(*pool, std::move(name)));
        } else if (template_pool* warm = pool_needing(false); warm != nullptr && has_room()) {
            launch(create_clone(*warm));
        } else {
            break;
        }
    }
    if (paused && !resume_scheduled_) {
        resume_scheduled_ = true;
        spawn_background(executor_, life_, sleep_until(paused_until_), endpoint_.name, "pause",
                         [this] {
                             resume_scheduled_ = false;
                             schedule();
                         });
    }
}

void pool_operations::launch(asio::awaitable<void> operation) {
    ++in_flight_;
    ++running_;
    spawn_background(executor_, life_, std::move(operation), endpoint_.name, "operation",
                     [this, generation = life_.generation] {
                         --running_;
                         if (generation == life_.generation) {
                             --in_flight_;
                         }
                         schedule();
                     });
}

void pool_operations::failed(std::chrono::seconds& pause) {
    ++failures_;
    pause = operation_backoff(failures_);
    paused_until_ = steady::now() + pause;
}

asio::awaitable<void> pool_operations::create_clone(template_pool& pool) {
    const auto generation = life_.generation;
    const std::string name = clone_database_name(prefix_, pool.template_name(), pool.fingerprint(),
                                                 pool.next_sequence());
    clone& c = pool.add(name, clone_state::creating);
    const template_entry& entry = *templates_.find(pool.template_name());
    const std::string strategy = entry.settings ? entry.settings->pool.strategy : "FILE_COPY";
    // The clone belongs to the role its leases hand out (in PostgreSQL 15 only the database's
    // owner may create in its public schema), or with per-lease roles to the admin.
    const clone_access access = access_of(&entry, endpoint_);
    const auto started = steady::now();
    // Everything read from the pool is read now: after an await the pool may be gone.
    const std::string source = pool.template_database();
    const std::string template_name = pool.template_name();
    catalog_comment comment = clone_comment(pool.template_name(), pool.fingerprint(), std::nullopt);
    std::string failure;
    bool name_taken = false;
    try {
        auto conn = co_await connections_.acquire();
        // Built outside the co_await expression: GCC 12 miscompiles braced lists there.
        const clone_spec spec{name, access, source, strategy};
        comment.baseline = co_await clone_database(*conn, spec, comment);
    } catch (const pg::duplicate_object_error& e) {
        failure = e.what();
        name_taken = true;
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != life_.generation) {
        co_return;
    }
    if (name_taken) {
        pool.remove(c);
        co_await claim_taken_name(template_name, name);
        co_return;
    }
    template_metrics& metrics = metrics_.of(template_name);
    if (!failure.empty()) {
        metrics.clone_failed();
        std::chrono::seconds pause{};
        failed(pause);
        warn_limited("clone_failed backend=" + endpoint_.name + " template=" + template_name,
                     "template={} db={} clone failed (pausing {}s): {}", template_name, name,
                     pause.count(), failure);
        // It may exist without its comment: drop whatever is there.
        drop(pool, c);
        co_return;
    }
    failures_ = 0;
    c.baseline = comment.baseline;
    const std::chrono::duration<double> took = steady::now() - started;
    metrics.clone_created(took.count());
    spdlog::debug("template={} db={} created in {:.1f} ms", template_name, name,
                  took.count() * 1000);
    if (pool.current_phase() == template_pool::phase::draining) {
        drop(pool, c);
        co_return;
    }
    hooks_.clone_ready(pool, c);
}

asio::awaitable<void> pool_operations::claim_taken_name(std::string template_name,
                                                        std::string name) {
    // Another database holds the name. A CREATE DATABASE sent by an earlier pgleased, killed
    // meanwhile, runs on and may commit after this one read the catalog: a database of ours
    // without a comment, which no reconcile would see again. Such a stray is dropped; one that
    // carries a comment is left alone.
    const auto generation = life_.generation;
    bool stray = false;
    try {
        auto conn = co_await connections_.acquire();
        auto found = co_await conn->query(
            "SELECT sd.description FROM pg_database d LEFT JOIN pg_shdescription sd "
            "  ON sd.objoid = d.oid AND sd.classoid = 'pg_database'::regclass "
            "WHERE d.datname = $1",
            name);
        stray = found.rows() == 1 &&
                (found.is_null(0, 0) || !decode_catalog_comment(found.value(0, 0)));
    } catch (const pg::pg_error& e) {
        spdlog::debug("db={} cannot be looked at: {}", name, e.what());
    }
    if (generation != life_.generation) {
        co_return;
    }
    spdlog::warn("template={} db={} exists already{}; skipping the name", template_name, name,
                 stray ? " without a comment (left by an earlier pgleased): dropping it" : "");
    if (stray) {
        drop_database(name);
    }
}

asio::awaitable<void> pool_operations::drop_clone(template_pool& pool, std::string name) {
    const auto generation = life_.generation;
    const auto started = steady::now();
    std::string failure;
    const clone* dropping = pool.find(name);
    const std::string role = dropping != nullptr ? dropping->lease_role : std::string();
    try {
        auto conn = co_await connections_.acquire();
        co_await conn->exec(
            "DROP DATABASE IF EXISTS " + conn->quote_identifier(name) + " WITH (FORCE)",
            database_operation_timeout);
        if (!role.empty()) {
            // The role of a lease that could still connect to it (see clone::lease_role).
            co_await conn->exec(drop_lease_role_sql(*conn, role));
        }
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != life_.generation) {
        co_return;
    }
    template_metrics& metrics = metrics_.of(pool.template_name());
    if (!failure.empty()) {
        metrics.drop_failed();
        std::chrono::seconds pause{};
        failed(pause);
        warn_limited("drop_failed backend=" + endpoint_.name + " template=" + pool.template_name(),
                     "template={} db={} drop failed (retrying in {}s): {}", pool.template_name(),
                     name, pause.count(), failure);
        clone_drops_.emplace_back(&pool, name);
        co_return;
    }
    const std::chrono::duration<double> took = steady::now() - started;
    metrics.clone_dropped(took.count());
    spdlog::debug("template={} db={} dropped in {:.1f} ms", pool.template_name(), name,
                  took.count() * 1000);
    if (clone* c = pool.find(name); c != nullptr) {
        pool.remove(*c);
    }
    for (auto& database : templates_.retire_empty()) {
        drop_database(std::move(database));
    }
}

asio::awaitable<void> pool_operations::drop_other(std::string name) {
    const auto generation = life_.generation;
    std::string failure;
    try {
        auto conn = co_await connections_.acquire();
        // A drop queued a while ago may find the name a live template again (rebuilt, or a new
        // client build): then it is not ours to drop.
        const bool dropped = co_await pglease::drop_database(
            *conn, name, [&] { return templates_.needs_database(name, prefix_); });
        if (!dropped) {
            spdlog::info("backend={} db={} is in use again; not dropping it", endpoint_.name, name);
            co_return;
        }
        hooks_.database_dropped(name);
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != life_.generation) {
        co_return;
    }
    if (!failure.empty()) {
        std::chrono::seconds pause{};
        failed(pause);
        warn_limited("drop_failed backend=" + endpoint_.name,
                     "backend={} db={} drop failed (retrying in {}s): {}", endpoint_.name, name,
                     pause.count(), failure);
        database_drops_.push_back(name);
        co_return;
    }
    spdlog::info("backend={} db={} dropped", endpoint_.name, name);
}

}  // namespace pglease
