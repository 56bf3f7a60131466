#pragma once

// The reset strategy: a clone whose lease ended, or a sticky lease's clone on its holder's
// request, is brought back to its template version's exact state in place (pool/clone_reset),
// undoing only what the lease touched; whatever cannot be proven exact falls back to reclone.
// Owns the admin connections it keeps to leased clones for their sticky resets, and whether
// this backend can reset at all (a superuser admin, pg_walinspect).

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_life.hpp"
#include "metrics/broker_metrics.hpp"
#include "pg/connection.hpp"
#include "pool/recycler.hpp"

namespace pglease {

class catalog_writer;
class session_ender;

class reset_in_place final : public recycler {
  public:
    struct hooks {
        /// A clone made fresh: it is free for the lease desk to serve or keep idle.
        std::function<void(template_pool&, clone&)> fresh;
    };

    reset_in_place(boost::asio::any_io_executor executor, const backend_endpoint& endpoint,
                   template_set& templates, catalog_writer& catalog, session_ender& sessions,
                   pg::connection_pool& maintenance, reclone& fallback, broker_metrics& metrics,
                   backend_life& life, hooks wiring);
    reset_in_place(const reset_in_place&) = delete;
    reset_in_place& operator=(const reset_in_place&) = delete;

    /// Whether this backend can reset in place; `why_not` is logged once otherwise.
    void set_available(bool available, const std::string& why_not);
    bool available() const noexcept { return available_; }

    void recycle(template_pool& pool, clone& c, recycle_cause cause) override;
    /// Sessions idle outside a transaction stay connected. Throws broker_error sessions_busy,
    /// naming them, while a session is in a transaction or running a statement.
    boost::asio::awaitable<refresh_outcome> refresh(template_pool& pool, clone& c,
                                                    lease_record lease) override;
    /// Closes the connection kept for clone `name` (it goes back to the pool, or away).
    void release_connection(const std::string& name);
    /// Forgets every kept connection (the backend was lost, or the broker stops).
    void forget() noexcept { held_.clear(); }

  private:
    /// True when `pool`'s template asks for reset in place (pool.recycle "reset").
    bool wanted(const template_pool& pool) const;
    /// Why clone `c` of `pool` cannot be reset in place now, in a word (a metric's label):
    /// unavailable (this backend cannot), snapshot (no record of the version's rows here),
    /// baseline (the clone has none); nothing when it can.
    std::optional<std::string> cannot_reset(const template_pool& pool, const clone& c) const;
    boost::asio::awaitable<void> reset_released(template_pool& pool, std::string name);
    /// Waits until fewer than the backend's max_parallel_clones released resets run; the
    /// caller runs until its turn_done goes.
    boost::asio::awaitable<void> take_turn();
    struct turn_done {
        explicit turn_done(reset_in_place& taker) : owner(taker) {}
        reset_in_place& owner;
        turn_done(const turn_done&) = delete;
        turn_done& operator=(const turn_done&) = delete;
        ~turn_done();
    };
    void fall_back(template_pool& pool, const std::string& name, const std::string& code,
                   const std::string& why);

    boost::asio::any_io_executor executor_;
    const backend_endpoint& endpoint_;
    template_set& templates_;
    catalog_writer& catalog_;
    session_ender& sessions_;
    pg::connection_pool& maintenance_;
    reclone& fallback_;
    broker_metrics& metrics_;
    backend_life& life_;
    hooks hooks_;
    bool available_ = false;
    std::map<std::string, pg::connection> held_;
    int turns_taken_ = 0;
    std::deque<std::shared_ptr<boost::asio::steady_timer>> turn_waiters_;
};

}  // namespace pglease
