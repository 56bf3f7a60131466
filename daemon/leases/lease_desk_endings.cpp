// How leases go on and end: renewed, reset for their holder, released, expired, kept past their
// time.
#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker_error.hpp"
#include "catalog/catalog_writer.hpp"
#include "leases/lease_desk.hpp"
#include "leases/lease_desk_detail.hpp"
#include "leases/lease_id.hpp"
#include "logging.hpp"
#include "pg/pg_error.hpp"
#include "pool/recycler.hpp"
#include "pool/session_ender.hpp"
#include "templates/template_set.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;
using steady = std::chrono::steady_clock;
using namespace lease_desk_detail;

asio::awaitable<lease_info> lease_desk::renew(std::string key,
                                              std::optional<std::chrono::seconds> ttl) {
    live_lease* lease = leases_.find(key);
    if (lease == nullptr) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    const lease_settings limits = limits_of(lease->pool->template_name());
    const auto extension =
        std::clamp(ttl.value_or(limits.ttl), std::chrono::seconds(1), limits.max_ttl);
    leases_.extend(*lease, system_clock::now() + extension);
    catalog_comment comment =
        clone_comment(lease->pool->template_name(), lease->pool->fingerprint(), std::nullopt);
    comment.lease = lease->record;
    comment.baseline = lease->db->baseline;
    const std::string database = lease->db->name;
    const lease_info info = describe(*lease);
    try {
        co_await catalog_.write(database, comment);
    } catch (const pg::pg_error& e) {
        throw broker_error("backend_down", "cannot record the renewal: " + std::string(e.what()),
                           1s);
    }
    metrics_.of(info.template_name).renewed();
    spdlog::debug("db={} lease={} renewed for {}s", database, short_key(key), extension.count());
    co_return info;
}

asio::awaitable<std::pair<lease_info, refresh_outcome>> lease_desk::reset(std::string key) {
    live_lease* lease = leases_.find(key);
    if (lease == nullptr) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    if (lease->resetting) {
        throw broker_error("conflict", "a reset of this lease is under way", 1s);
    }
    lease->resetting = true;
    template_pool& pool = *lease->pool;
    clone& c = *lease->db;
    const lease_record record = lease->record;
    refresh_outcome outcome;
    std::exception_ptr failure;
    try {
        outcome = co_await recycler_.refresh(pool, c, record);
    } catch (...) {
        failure = std::current_exception();
    }
    live_lease* still = leases_.find(key);
    if (still != nullptr) {
        still->resetting = false;
    }
    if (failure) {
        std::rethrow_exception(failure);
    }
    if (still == nullptr) {
        throw broker_error("unknown_lease", "the lease ended while its database was reset");
    }
    spdlog::debug("template={} db={} lease={} reset: {}", pool.template_name(), still->db->name,
                  short_key(key), outcome.result);
    co_return std::make_pair(describe(*still), outcome);
}

asio::awaitable<void> lease_desk::release(std::string key, release_mode mode,
                                          std::optional<std::chrono::seconds> keep_for) {
    if (const live_lease* resetting = leases_.find(key); resetting && resetting->resetting) {
        throw broker_error("conflict",
                           "a reset of this lease is under way; release it once that answers", 1s);
    }
    const auto taken = leases_.take(key);
    if (!taken) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    const auto generation = life_.generation;
    template_pool& pool = *taken->pool;
    clone& c = *taken->db;
    const std::string database = c.name;  // c may be gone once an await returns
    const lease_settings limits = limits_of(pool.template_name());
    metrics_.of(pool.template_name()).released(mode, held_for(taken->record));
    spdlog::debug("template={} db={} lease={} released mode={}", pool.template_name(), database,
                  short_key(key), mode_name(mode));

    if (mode == release_mode::reuse && pool.current_phase() == template_pool::phase::ready) {
        // Recorded idle in one round trip, which is all the worker waits for. Its sessions, if
        // any are left (a test closes them just before it releases; their backends may still be
        // exiting), are ended before the clone is offered again, off the catalog connections.
        std::string problem;
        catalog_comment idle =
            clone_comment(pool.template_name(), pool.fingerprint(), std::nullopt);
        idle.baseline = c.baseline;
        const std::string role = role_of(key);
        try {
            // Its role may no longer connect from the same transaction on.
            catalog_writer::statements revoked = role_revoked(role, database);
            co_await catalog_.write(database, std::move(idle), false, std::move(revoked));
        } catch (const pg::pg_error& e) {
            problem = e.what();
        }
        const bool clean = problem.empty();
        if (!clean) {
            warn_limited("reuse_failed backend=" + endpoint_.name,
                         "template={} db={} cannot be reused, recycling it: {}",
                         pool.template_name(), database, problem);
        }
        if (generation != life_.generation) {
            co_return;
        }
        if (!role.empty()) {
            hooks_.role_over();
        }
        if (clean) {
            offer_once_settled(pool, c);
        } else {
            recycler_.recycle(pool, c, recycle_cause::released);
        }
        co_return;
    }
    if (mode == release_mode::keep) {
        const auto keep =
            std::clamp(keep_for.value_or(limits.keep), std::chrono::seconds(1), limits.max_keep);
        pool.move(c, clone_state::kept);
        leases_.keep(pool, c, system_clock::now() + keep);
        c.lease_role = role_of(key);
        try {
            co_await catalog_.write(
                database, clone_comment(pool.template_name(), pool.fingerprint(), c.kept_until));
        } catch (const pg::pg_error& e) {
            warn_limited("catalog_write_failed backend=" + endpoint_.name,
                         "db={} kept, but the catalog could not record it: {}", database, e.what());
        }
        co_return;
    }
    // recycle: mark it released first, so that a restart drops it rather than honouring the lease.
    catalog_comment comment = clone_comment(pool.template_name(), pool.fingerprint(), std::nullopt);
    comment.released = true;
    const std::string role = role_of(key);
    try {
        // With per-lease roles its sessions are signaled too, while the admin is still a member
        // of their role.
        catalog_writer::statements revoked = role_revoked(role, database);
        co_await catalog_.write(database, comment, !role.empty(), std::move(revoked));
    } catch (const pg::pg_error& e) {
        warn_limited("catalog_write_failed backend=" + endpoint_.name,
                     "db={} released, but the catalog could not record it: {}", database, e.what());
    }
    if (generation != life_.generation) {
        co_return;
    }
    if (!role.empty()) {
        hooks_.role_over();
    }
    recycler_.recycle(pool, c, recycle_cause::released);
}

void lease_desk::offer_once_settled(template_pool& pool, clone& c) {
    pool.move(c, clone_state::resetting);
    spawn_background(executor_, life_, settle(pool, c.name), endpoint_.name, "session_end");
}

asio::awaitable<void> lease_desk::settle(template_pool& pool, std::string database) {
    const auto generation = life_.generation;
    // After the call that handed it over has answered (a task spawned runs at once, up to its
    // first wait).
    co_await asio::post(executor_, asio::use_awaitable);
    if (generation != life_.generation) {
        co_return;
    }
    std::string problem;
    try {
        if (!co_await sessions_.end_sessions(database, session_patience)) {
            problem = "a session of its last lease did not end within " +
                      std::to_string(session_patience.count()) + " ms";
        }
    } catch (const pg::pg_error& e) {
        problem = e.what();
    }
    if (generation != life_.generation) {
        co_return;
    }
    clone* c = pool.find(database);
    if (c == nullptr || c->state != clone_state::resetting) {
        co_return;
    }
    if (!problem.empty()) {
        warn_limited("reuse_failed backend=" + endpoint_.name,
                     "template={} db={} cannot be reused, recycling it: {}", pool.template_name(),
                     database, problem);
        recycler_.recycle(pool, *c, recycle_cause::released);
        co_return;
    }
    offer(pool, *c);
    hooks_.changed();
}

asio::awaitable<void> lease_desk::end_sessions_now(std::string database) {
    co_await sessions_.end_sessions(std::move(database), session_patience);
}

void lease_desk::lease_expired(const std::string& key) {
    if (live_lease* resetting = leases_.find(key); resetting && resetting->resetting) {
        // Its database is being reset for it: it expires once that is done.
        leases_.extend(*resetting, system_clock::now() + 1s);
        return;
    }
    const auto taken = leases_.take(key);
    if (!taken) {
        return;
    }
    metrics_.of(taken->pool->template_name()).expired(held_for(taken->record));
    spdlog::info("template={} db={} lease={} expired (owner={}); recycling",
                 taken->pool->template_name(), taken->db->name, short_key(key),
                 taken->record.owner);
    const std::string database = taken->db->name;
    template_pool& pool = *taken->pool;
    // Its role goes with the clone, which an unattended recycle drops.
    taken->db->lease_role = role_of(key);
    recycler_.recycle(pool, *taken->db, recycle_cause::unattended);
    // The drop may wait behind clones: its sessions go at once.
    spawn_background(executor_, life_, end_sessions_now(database), endpoint_.name, "session_end");
}

void lease_desk::keep_expired(const std::string& name) {
    template_pool* pool = leases_.take_kept(name);
    if (pool == nullptr) {
        return;
    }
    if (clone* c = pool->find(name); c != nullptr && c->state == clone_state::kept) {
        spdlog::info("template={} db={} keep time over; dropping", pool->template_name(), name);
        recycler_.recycle(*pool, *c, recycle_cause::unattended);  // its role goes with it
    }
}

}  // namespace pglease
