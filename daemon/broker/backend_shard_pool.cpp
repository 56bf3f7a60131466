// Pool operations: the refill rule, clones and drops within the backend's limits.
#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "broker/backend_shard.hpp"
#include "broker/backoff.hpp"
#include "logging.hpp"
#include "pg/pg_error.hpp"
#include "pool/database_names.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// CREATE and DROP DATABASE of a large template take a while, FILE_COPY on disk longest.
constexpr std::chrono::milliseconds long_operation{std::chrono::minutes(10)};

// After a failed clone or drop, the backend gets a rest: 1 s, 2 s ... up to 30 s.
std::chrono::seconds operation_backoff(int failures) {
    return doubling_backoff(failures, 30s);
}

}  // namespace

bool backend_shard::wants_clone(const template_entry& entry, bool for_waiters_only) const {
    const template_pool* pool = entry.current.get();
    if (pool == nullptr || !entry.settings) {
        return false;
    }
    const std::size_t idle = pool->count(clone_state::idle);
    const std::size_t creating = pool->count(clone_state::creating);
    const std::size_t waiters = entry.waiters.size();
    const auto max_total = static_cast<std::size_t>(entry.settings->pool.max_total);
    // Clones being dropped count: recycling drops wait behind clones for waiters, and without
    // them in the count a burst would hold twice max_total databases.
    if (pool->size() >= max_total) {
        return false;
    }
    if (for_waiters_only) {
        return idle + creating < waiters;
    }
    return idle + creating < static_cast<std::size_t>(entry.settings->pool.min_idle) + waiters;
}

std::size_t backend_shard::managed_databases() const noexcept {
    std::size_t total = template_drop_queue_.size();
    for (const auto& [name, entry] : templates_) {
        if (entry.current) {
            total += entry.current->size() + 1;
        }
        for (const auto& pool : entry.draining) {
            total += pool->size() + (pool->template_database().empty() ? 0 : 1);
        }
        total += entry.building ? 1 : 0;
    }
    return total;
}

backend_status backend_shard::backend_state() const {
    backend_status state;
    state.name = endpoint_.name;
    state.up = up_;
    state.admin_connections = (lock_connection_ ? 1 : 0) + operations_->open() + catalog_->open();
    state.databases = managed_databases();
    state.max_databases = endpoint_.max_databases;
    state.operations_in_progress = operations_in_flight_;
    state.max_parallel_clones = endpoint_.max_parallel_clones;
    state.orphans = orphans_;
    return state;
}

bool backend_shard::has_room() const noexcept {
    return managed_databases() < static_cast<std::size_t>(endpoint_.max_databases);
}

void backend_shard::schedule() {
    if (!up_ || stopping_) {
        return;
    }
    const bool paused = steady::now() < clones_paused_until_;
    const auto launch = [this](asio::awaitable<void> operation) {
        ++operations_in_flight_;
        ++background_tasks_;
        asio::co_spawn(executor_, std::move(operation),
                       [this, generation = generation_](const std::exception_ptr& failure) {
                           --background_tasks_;
                           if (generation == generation_) {
                               --operations_in_flight_;
                           }
                           if (failure) {
                               try {
                                   std::rethrow_exception(failure);
                               } catch (const std::exception& e) {
                                   warn_limited("operation_failed backend=" + endpoint_.name,
                                                "backend={} operation failed: {}", endpoint_.name,
                                                e.what());
                               }
                           }
                           schedule();
                       });
    };
    const auto pick = [this](bool for_waiters_only) -> template_pool* {
        for (auto& [name, entry] : templates_) {
            if (wants_clone(entry, for_waiters_only)) {
                return entry.current.get();
            }
        }
        return nullptr;
    };
    // After a burst, idle clones beyond the warm target only hold disk: let them go once the
    // surplus has lasted surplus_grace (a timer comes back for it; nothing polls).
    const auto now = std::chrono::system_clock::now();
    for (auto& [name, entry] : templates_) {
        const auto min_idle = entry.settings
                                  ? static_cast<std::size_t>(entry.settings->pool.min_idle)
                                  : std::size_t{0};
        if (!entry.current || !entry.settings || !entry.waiters.empty() ||
            entry.current->count(clone_state::idle) <= min_idle) {
            entry.surplus_since.reset();
            continue;
        }
        if (!entry.surplus_since) {
            entry.surplus_since = now;
        }
        if (now < *entry.surplus_since + surplus_grace) {
            if (!entry.trim_check_pending) {
                entry.trim_check_pending = true;
                add_deadline(*entry.surplus_since + surplus_grace, deadline_kind::surplus_trim,
                             name);
            }
            continue;
        }
        entry.surplus_since.reset();
        while (entry.current->count(clone_state::idle) > min_idle) {
            queue_drop(*entry.current, *entry.current->in_state(clone_state::idle).back());
        }
    }
    while (operations_in_flight_ < endpoint_.max_parallel_clones && !paused) {
        // Clones that serve waiting workers go first; drops only free disk (and room under the
        // cap, so they go next); then the pools are warmed to min_idle.
        if (template_pool* pool = pick(true); pool != nullptr && has_room()) {
            launch(create_clone(*pool));
        } else if (!template_drop_queue_.empty()) {
            std::string name = std::move(template_drop_queue_.front());
            template_drop_queue_.erase(template_drop_queue_.begin());
            launch(drop_template_database(std::move(name)));
        } else if (!drop_queue_.empty()) {
            auto [drop_pool, name] = std::move(drop_queue_.front());
            drop_queue_.pop_front();
            launch(drop_clone(*drop_pool, std::move(name)));
        } else if (template_pool* warm = pick(false); warm != nullptr && has_room()) {
            launch(create_clone(*warm));
        } else {
            break;
        }
    }
    if (paused && !resume_scheduled_) {
        resume_scheduled_ = true;
        ++background_tasks_;
        asio::co_spawn(
            executor_,
            [this]() -> asio::awaitable<void> {
                co_await sleep_for(clones_paused_until_ - steady::now());
            },
            [this](const std::exception_ptr&) {
                --background_tasks_;
                resume_scheduled_ = false;
                schedule();
            });
    }
}

asio::awaitable<void> backend_shard::create_clone(template_pool& pool) {
    const auto generation = generation_;
    const std::string name = clone_database_name(config_.prefix, pool.template_name(),
                                                 pool.fingerprint(), pool.next_sequence());
    clone& c = pool.add(name, clone_state::creating);
    const auto* entry = &templates_.at(pool.template_name());
    const std::string strategy = entry->settings ? entry->settings->pool.strategy : "FILE_COPY";
    // The clone belongs to the role its leases hand out: in PostgreSQL 15 only the database's
    // owner may create in its public schema.
    const std::string owner = lease_role_of(*entry);
    const auto started = steady::now();
    // Everything read from the pool is read now: after an await the pool may be gone.
    const std::string source = pool.template_database();
    const std::string comment = encode_catalog_comment(clone_comment(pool, c));
    std::string failure;
    bool name_taken = false;
    try {
        auto conn = co_await operations_->acquire();
        co_await conn->exec("CREATE DATABASE " + conn->quote_identifier(name) + " OWNER " +
                                conn->quote_identifier(owner) + " TEMPLATE " +
                                conn->quote_identifier(source) + " STRATEGY " + strategy,
                            long_operation);
        co_await conn->exec("COMMENT ON DATABASE " + conn->quote_identifier(name) + " IS " +
                            conn->quote_literal(comment));
    } catch (const pg::duplicate_object_error& e) {
        failure = e.what();
        name_taken = true;
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != generation_) {
        co_return;
    }
    if (name_taken) {
        pool.remove(c);
        // Another database holds the name. A CREATE DATABASE sent by an earlier pgleased, killed
        // meanwhile, runs on and may commit after this one read the catalog: a database of ours
        // without a comment, which no reconcile would see again. Such a stray is dropped; one
        // that carries a comment is left alone.
        bool stray = false;
        try {
            auto conn = co_await operations_->acquire();
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
        if (generation != generation_) {
            co_return;
        }
        spdlog::warn("template={} db={} exists already{}; skipping the name", pool.template_name(),
                     name,
                     stray ? " without a comment (left by an earlier pgleased): dropping it" : "");
        if (stray) {
            template_drop_queue_.push_back(name);
        }
        co_return;
    }
    template_metrics& metrics = metrics_.of(pool.template_name());
    if (!failure.empty()) {
        metrics.clone_failed();
        ++clone_failures_;
        clones_paused_until_ = steady::now() + operation_backoff(clone_failures_);
        warn_limited("clone_failed backend=" + endpoint_.name + " template=" + pool.template_name(),
                     "template={} db={} clone failed (pausing {}s): {}", pool.template_name(), name,
                     operation_backoff(clone_failures_).count(), failure);
        // It may exist without its comment: drop whatever is there.
        queue_drop(pool, c);
        co_return;
    }
    clone_failures_ = 0;
    const std::chrono::duration<double> took = steady::now() - started;
    metrics.clone_created(took.count());
    spdlog::debug("template={} db={} created in {:.1f} ms", pool.template_name(), name,
                  took.count() * 1000);
    if (pool.current_phase() == template_pool::phase::draining) {
        queue_drop(pool, c);
        co_return;
    }
    became_idle(pool, c);
}

asio::awaitable<void> backend_shard::drop_clone(template_pool& pool, std::string name) {
    const auto generation = generation_;
    const auto started = steady::now();
    std::string failure;
    try {
        auto conn = co_await operations_->acquire();
        co_await conn->exec(
            "DROP DATABASE IF EXISTS " + conn->quote_identifier(name) + " WITH (FORCE)",
            long_operation);
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != generation_) {
        co_return;
    }
    clone* c = pool.find(name);
    template_metrics& metrics = metrics_.of(pool.template_name());
    if (!failure.empty()) {
        metrics.drop_failed();
        ++clone_failures_;
        clones_paused_until_ = steady::now() + operation_backoff(clone_failures_);
        warn_limited("drop_failed backend=" + endpoint_.name + " template=" + pool.template_name(),
                     "template={} db={} drop failed (retrying in {}s): {}", pool.template_name(),
                     name, operation_backoff(clone_failures_).count(), failure);
        drop_queue_.emplace_back(&pool, name);
        co_return;
    }
    const std::chrono::duration<double> took = steady::now() - started;
    metrics.clone_dropped(took.count());
    spdlog::debug("template={} db={} dropped in {:.1f} ms", pool.template_name(), name,
                  took.count() * 1000);
    if (c != nullptr) {
        pool.remove(*c);
    }
    retire_empty_pools();
}

asio::awaitable<void> backend_shard::drop_template_database(std::string name) {
    const auto generation = generation_;
    std::string failure;
    try {
        auto conn = co_await operations_->acquire();
        if (!co_await drop_database(*conn, name, generation == generation_)) {
            spdlog::info("backend={} db={} is in use again; not dropping it", endpoint_.name, name);
            co_return;
        }
    } catch (const pg::pg_error& e) {
        failure = e.what();
    }
    if (generation != generation_) {
        co_return;
    }
    if (!failure.empty()) {
        ++clone_failures_;
        clones_paused_until_ = steady::now() + operation_backoff(clone_failures_);
        warn_limited("drop_failed backend=" + endpoint_.name,
                     "backend={} db={} drop failed (retrying in {}s): {}", endpoint_.name, name,
                     operation_backoff(clone_failures_).count(), failure);
        template_drop_queue_.push_back(name);
        co_return;
    }
    spdlog::info("backend={} db={} dropped", endpoint_.name, name);
}

asio::awaitable<bool> backend_shard::drop_database(pg::connection& conn, std::string name,
                                                   bool unless_in_use) {
    const std::string quoted = conn.quote_identifier(name);
    // A template cannot be dropped while marked one; an invalid database (an interrupted drop)
    // cannot be altered at all (the server ends the session), only dropped.
    auto kind = co_await conn.query(
        "SELECT datistemplate AND datconnlimit <> -2 FROM pg_database WHERE datname = $1", name);
    // A drop queued a while ago may find the name a live template again (rebuilt, or a new
    // client build): then it is not ours to drop. Checked with no wait before the DROP.
    if (unless_in_use && template_database_in_use(name)) {
        co_return false;
    }
    if (kind.rows() == 1 && kind.value(0, 0) == "t") {
        co_await conn.exec("ALTER DATABASE " + quoted + " IS_TEMPLATE false");
    }
    co_await conn.exec("DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)", long_operation);
    co_return true;
}

bool backend_shard::template_database_in_use(const std::string& name) const {
    for (const auto& [template_name, entry] : templates_) {
        if ((entry.current && entry.current->template_database() == name) ||
            (entry.build && entry.build->database == name)) {
            return true;
        }
        if (entry.building && !entry.wanted_fingerprint.empty() &&
            template_database_name(config_.prefix, entry.name, entry.wanted_fingerprint) == name) {
            return true;
        }
        for (const auto& pool : entry.draining) {
            if (pool->template_database() == name) {
                return true;
            }
        }
    }
    return false;
}

void backend_shard::serve_waiters() {
    for (auto& [name, entry] : templates_) {
        while (entry.current && !entry.waiters.empty()) {
            clone* idle = entry.current->oldest_idle();
            if (idle == nullptr) {
                break;
            }
            became_idle(*entry.current, *idle);
        }
    }
}

void backend_shard::queue_drop(template_pool& pool, clone& c) {
    pool.move(c, clone_state::dropping);
    drop_queue_.emplace_back(&pool, c.name);
}

void backend_shard::became_idle(template_pool& pool, clone& c) {
    if (pool.current_phase() == template_pool::phase::draining) {
        // Its version was replaced meanwhile (a reuse or a clone that took a while).
        queue_drop(pool, c);
        return;
    }
    pool.move(c, clone_state::idle);
    auto& entry = templates_.at(pool.template_name());
    if (entry.current.get() != &pool || entry.waiters.empty()) {
        return;
    }
    // The longest waiting worker gets it; it writes the lease once it runs again.
    waiter* next = entry.waiters.front();
    entry.waiters.pop_front();
    pool.move(c, clone_state::leased);
    next->pool = &pool;
    next->granted = &c;
    next->granted_in = generation_;
    next->wakeup.cancel();
}

void backend_shard::retire_empty_pools() {
    for (auto& [name, entry] : templates_) {
        auto& draining = entry.draining;
        for (auto it = draining.begin(); it != draining.end();) {
            if ((*it)->size() > 0) {
                ++it;
                continue;
            }
            if (!(*it)->template_database().empty()) {
                spdlog::info("template={} version {} drained", name,
                             short_fingerprint((*it)->fingerprint()));
                template_drop_queue_.push_back((*it)->template_database());
            }
            it = draining.erase(it);
        }
    }
}

}  // namespace pglease
