#include "pool/reset_in_place.hpp"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker_error.hpp"
#include "catalog/catalog_writer.hpp"
#include "logging.hpp"
#include "pg/connection_pool.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"
#include "pool/clone_reset.hpp"
#include "pool/lease_access.hpp"
#include "pool/session_ender.hpp"
#include "templates/template_set.hpp"
#include "templates/version_snapshot.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// How long the sessions of a clone whose lease ended get to end before it is cloned again.
constexpr std::chrono::milliseconds session_patience{2000};

double seconds_since(steady::time_point start) {
    return std::chrono::duration<double>(steady::now() - start).count();
}

}  // namespace

reset_in_place::reset_in_place(asio::any_io_executor executor, const backend_endpoint& endpoint,
                               template_set& templates, catalog_writer& catalog,
                               session_ender& sessions, pg::connection_pool& maintenance,
                               reclone& fallback, broker_metrics& metrics, backend_life& life,
                               hooks wiring)
    : executor_(std::move(executor)),
      endpoint_(endpoint),
      templates_(templates),
      catalog_(catalog),
      sessions_(sessions),
      maintenance_(maintenance),
      fallback_(fallback),
      metrics_(metrics),
      life_(life),
      hooks_(std::move(wiring)) {}

void reset_in_place::set_available(bool available, const std::string& why_not) {
    if (!available && available_ != available) {
        spdlog::info("backend={} clones are cloned again rather than reset in place: {}",
                     endpoint_.name, why_not);
    }
    available_ = available;
}

bool reset_in_place::wanted(const template_pool& pool) const {
    const template_entry* entry = templates_.find(pool.template_name());
    return entry != nullptr && entry->settings && entry->settings->pool.recycle == "reset";
}

std::optional<std::string> reset_in_place::cannot_reset(const template_pool& pool,
                                                        const clone& c) const {
    if (!available_) {
        return "unavailable";
    }
    if (!pool.snapshot()) {
        return "snapshot";  // this version was built by another broker, whose data dir has it
    }
    if (!c.baseline) {
        return "baseline";
    }
    return std::nullopt;
}

void reset_in_place::release_connection(const std::string& name) {
    held_.erase(name);
}

void reset_in_place::recycle(template_pool& pool, clone& c, recycle_cause cause) {
    release_connection(c.name);
    if (!wanted(pool) || pool.current_phase() == template_pool::phase::draining) {
        fallback_.recycle(pool, c, cause);  // not counted: no reset was asked for
        return;
    }
    // Its holder may still connect with the DSN it was given (unattended): cloned again.
    std::optional<std::string> code = cannot_reset(pool, c);
    if (!code && cause == recycle_cause::unattended) {
        code = "unattended";
    }
    if (code) {
        metrics_.of(pool.template_name()).recloned(*code);
        spdlog::debug("template={} db={} cloned again rather than reset ({})", pool.template_name(),
                      c.name, *code);
        fallback_.recycle(pool, c, cause);
        return;
    }
    pool.move(c, clone_state::resetting);
    spawn_background(executor_, life_, reset_released(pool, c.name), endpoint_.name, "reset");
}

void reset_in_place::fall_back(template_pool& pool, const std::string& name,
                               const std::string& code, const std::string& why) {
    metrics_.of(pool.template_name()).recloned(code);
    spdlog::debug("template={} db={} cannot be reset in place ({}); cloning it again",
                  pool.template_name(), name, why);
    if (clone* c = pool.find(name)) {
        fallback_.recycle(pool, *c, recycle_cause::released);
    }
}

asio::awaitable<void> reset_in_place::take_turn() {
    while (turns_taken_ >= std::max(1, endpoint_.max_parallel_clones)) {
        auto wake =
            std::make_shared<asio::steady_timer>(executor_, asio::steady_timer::time_point::max());
        turn_waiters_.push_back(wake);
        boost::system::error_code ignored;
        co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    ++turns_taken_;
}

reset_in_place::turn_done::~turn_done() {
    --owner.turns_taken_;
    if (!owner.turn_waiters_.empty()) {
        owner.turn_waiters_.front()->cancel();
        owner.turn_waiters_.pop_front();
    }
}

asio::awaitable<void> reset_in_place::reset_released(template_pool& pool, std::string name) {
    const auto generation = life_.generation;
    // From its turn on, like a clone's time: the wait for sessions and for a turn is left out.
    auto started = steady::now();
    // Read now: the pool outlives this task only while the generation holds.
    const std::string template_name = pool.template_name();
    const std::string fingerprint = pool.fingerprint();
    const std::shared_ptr<const version_snapshot> snapshot = pool.snapshot();
    const reset_baseline baseline = *pool.find(name)->baseline;
    std::string code;
    std::string why;
    std::optional<reset_baseline> next;
    try {
        // Marked as being reset (a broker killed now leaves a clone the next start drops), in a
        // round trip whose commit makes the WAL readable; its sessions are ended off the catalog
        // connections.
        catalog_comment marker = clone_comment(template_name, fingerprint, std::nullopt);
        marker.resetting = true;
        co_await catalog_.write(name, marker);
        if (generation != life_.generation) {
            co_return;
        }
        const bool ended = co_await sessions_.end_sessions(name, session_patience);
        if (generation != life_.generation) {
            co_return;
        }
        if (!ended) {
            code = "sessions";
            why = "a session would not end";
        } else {
            // Each reset of a released clone holds an admin session on it: a few at once, like
            // the clones a backend runs at once.
            co_await take_turn();
            const turn_done done{*this};
            started = steady::now();
            if (generation != life_.generation) {
                co_return;
            }
            auto conn = co_await pg::connection::connect(
                pg::with_database(endpoint_.admin_conninfo, name), 10s);
            reset_plan plan;
            plan.privileges =
                privileges_as_given_sql(conn, access_of(templates_.find(template_name), endpoint_));
            plan.clean = [&](const reset_baseline& fresh) {
                catalog_comment clean = clone_comment(template_name, fingerprint, std::nullopt);
                clean.baseline = fresh;
                return encode_catalog_comment(clean);
            };
            const reset_result result = co_await reset_clone(maintenance_, conn, *snapshot, name,
                                                             baseline, std::move(plan));
            if (result.in_place) {
                next = result.baseline;
            } else {
                code = result.code;
                why = result.reason;
            }
        }
    } catch (const pg::pg_error& e) {
        code = "error";
        why = e.what();
    } catch (const std::runtime_error& e) {
        code = "error";
        why = e.what();
    }
    if (generation != life_.generation) {
        co_return;
    }
    clone* c = pool.find(name);
    if (c == nullptr || c->state != clone_state::resetting) {
        co_return;
    }
    if (!next) {
        if (code == "error") {
            warn_limited("reset_failed backend=" + endpoint_.name + " template=" + template_name,
                         "template={} db={} reset in place failed, cloning it again: {}",
                         template_name, name, why);
        }
        fall_back(pool, name, code, why);
        co_return;
    }
    c->baseline = std::move(next);
    metrics_.of(template_name).reset_in_place(seconds_since(started));
    spdlog::debug("template={} db={} reset in place in {:.1f} ms", template_name, name,
                  seconds_since(started) * 1000);
    hooks_.fresh(pool, *c);
}

asio::awaitable<refresh_outcome> reset_in_place::refresh(template_pool& pool, clone& c,
                                                         lease_record lease) {
    const auto generation = life_.generation;
    const auto started = steady::now();
    const std::string name = c.name;
    const std::string template_name = pool.template_name();
    const bool wants = wanted(pool);
    if (const auto code = cannot_reset(pool, c); !wants || code) {
        release_connection(name);
        if (wants) {
            metrics_.of(template_name).recloned(*code);
        }
        refresh_outcome outcome = co_await fallback_.refresh(pool, c, lease);
        outcome.reason = !wants ? "the template recycles by reclone"
                         : *code == "unavailable"
                             ? "reset in place is unavailable on backend " + endpoint_.name
                         : *code == "snapshot"
                             ? "this broker has no record of the version's rows (another built it)"
                             : "the database has no reset baseline";
        co_return outcome;
    }
    const std::shared_ptr<const version_snapshot> snapshot = pool.snapshot();
    const reset_baseline baseline = *c.baseline;
    catalog_comment leased = clone_comment(template_name, pool.fingerprint(), std::nullopt);
    leased.lease = lease;
    reset_result result;
    {
        // Taken out of the map while in use: forgetting the backend clears the map meanwhile.
        pg::connection conn;
        if (auto kept = held_.find(name); kept != held_.end()) {
            conn = std::move(kept->second);
            held_.erase(kept);
        }
        if (!conn.usable()) {
            conn = co_await pg::connection::connect(
                pg::with_database(endpoint_.admin_conninfo, name), 10s);
        }
        // A session inside a transaction would hold the reset back on its locks, or see it
        // happen under it: the holder ends those first. The clone is marked as being reset
        // (a broker killed meanwhile leaves a lease whose next reset clones again) in the
        // round trip that reads its WAL, and marked clean by the reset's own commit.
        catalog_comment marker = leased;
        marker.resetting = true;
        reset_plan plan;
        plan.privileges =
            privileges_as_given_sql(conn, access_of(templates_.find(template_name), endpoint_,
                                                    per_lease_role(endpoint_, lease.key)));
        plan.marker = encode_catalog_comment(marker);
        plan.busy_check = true;
        plan.keep_pid = conn.backend_pid();
        plan.clean = [&](const reset_baseline& fresh) {
            catalog_comment clean = leased;
            clean.baseline = fresh;
            return encode_catalog_comment(clean);
        };
        try {
            result = co_await reset_clone(maintenance_, conn, *snapshot, name, baseline,
                                          std::move(plan));
        } catch (const pg::pg_error& e) {
            result.in_place = false;
            result.code = "error";
            result.reason = e.what();
        }
        if (generation == life_.generation && conn.usable()) {
            held_[name] = std::move(conn);
        }
        if (!result.busy.empty()) {
            catalog_comment unchanged = leased;
            unchanged.baseline = baseline;
            co_await catalog_.write(name, unchanged);
            throw broker_error("sessions_busy",
                               "sessions on " + name + " are in a transaction or running a " +
                                   "statement: " + result.busy +
                                   "; commit or roll back, then reset again",
                               std::chrono::seconds(1));
        }
    }
    if (generation != life_.generation) {
        throw broker_error("backend_down", "backend " + endpoint_.name + " restarted", 1s);
    }
    clone* same = pool.find(name);
    if (same == nullptr) {
        throw broker_error("backend_down", "the lease's database is gone", 1s);
    }
    if (!result.in_place) {
        release_connection(name);
        metrics_.of(template_name).recloned(result.code);
        refresh_outcome outcome = co_await fallback_.refresh(pool, *same, lease);
        outcome.reason = result.reason;
        co_return outcome;
    }
    same->baseline = result.baseline;
    metrics_.of(template_name).reset_in_place(seconds_since(started));
    refresh_outcome outcome;
    outcome.result = "reset";
    co_return outcome;
}

}  // namespace pglease
