#pragma once

// Owns the clone and drop operations of one backend: the queue of drops, the operations in
// flight under max_parallel_clones, the pause after failures, and each pool's surplus watch.
// It alone starts CREATE and DROP DATABASE; it runs the refill rule over every template after
// each change (schedule()).

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_life.hpp"
#include "leases/deadline_queue.hpp"
#include "metrics/broker_metrics.hpp"
#include "pool/refill_rule.hpp"

namespace pglease {

namespace pg {
class connection_pool;
}
class template_set;
class template_pool;
struct clone;
struct template_entry;

class pool_operations {
  public:
    struct hooks {
        /// A clone was created: it is free for the lease desk to serve or keep idle.
        std::function<void(template_pool&, clone&)> clone_ready;
        /// Workers a clone of a version would serve now (`newest`: the template's newest).
        std::function<std::size_t(const template_pool&, bool newest)> waiters;
        /// A database that is no clone was dropped (a version's template database: what was
        /// recorded of it for resets goes too).
        std::function<void(const std::string&)> database_dropped;
    };

    pool_operations(boost::asio::any_io_executor executor, const backend_endpoint& endpoint,
                    std::string prefix, template_set& templates, deadline_queue& deadlines,
                    broker_metrics& metrics, pg::connection_pool& connections, backend_life& life,
                    hooks wiring);
    pool_operations(const pool_operations&) = delete;
    pool_operations& operator=(const pool_operations&) = delete;

    /// Runs the refill and surplus rules over every template and starts the operations they
    /// call for: clones for waiting workers first, then drops, then warming.
    void schedule();
    /// Queues clone `c` for dropping (it counts against max_total until it is gone).
    void drop(template_pool& pool, clone& c);
    /// Queues a database that is no clone for dropping: a template database, a stray.
    void drop_database(std::string name);
    /// A surplus_trim deadline of `template_name` fell due.
    void surplus_due(const std::string& key);

    /// True while the backend may hold one more database of ours (max_databases).
    bool has_room() const noexcept;
    /// Databases of ours on the backend: every version's and build's, and those queued to drop.
    std::size_t databases() const noexcept;
    /// CREATE and DROP DATABASE running now.
    int in_flight() const noexcept { return in_flight_; }
    /// Operations still running, those started before the backend was lost included.
    int running() const noexcept { return running_; }
    /// Forgets queued work and watches (the backend was lost).
    void forget() noexcept;

  private:
    struct surplus_watch {
        std::optional<std::chrono::system_clock::time_point> since;
        bool check_pending = false;
    };

    void trim_surpluses();
    pool_demand demand_of(const template_entry& entry, const template_pool& pool) const;
    template_pool* pool_needing(bool for_waiters);
    /// Evicts the versions of client-initialized templates no lease took for their idle time
    /// (the newest of each template stays; it only keeps no warm clones).
    void evict_idle_versions();
    /// Under max_databases, with workers waiting for `wanted`: evicts the least recently
    /// leased version that holds no lease, so its databases make room.
    void make_room(const template_pool& wanted);
    void evict(template_entry& entry, template_pool& pool, bool for_room);
    void launch(boost::asio::awaitable<void> operation);
    void failed(std::chrono::seconds& pause);
    boost::asio::awaitable<void> create_clone(template_pool& pool);
    boost::asio::awaitable<void> drop_clone(template_pool& pool, std::string name);
    boost::asio::awaitable<void> drop_other(std::string name);
    /// A name found taken: drops the database when it is a stray of ours (no comment).
    boost::asio::awaitable<void> claim_taken_name(std::string template_name, std::string name);

    boost::asio::any_io_executor executor_;
    const backend_endpoint& endpoint_;
    std::string prefix_;
    template_set& templates_;
    deadline_queue& deadlines_;
    broker_metrics& metrics_;
    pg::connection_pool& connections_;
    backend_life& life_;
    hooks hooks_;

    std::deque<std::pair<template_pool*, std::string>> clone_drops_;
    std::vector<std::string> database_drops_;
    std::map<std::string, surplus_watch> surplus_;
    int in_flight_ = 0;
    int running_ = 0;
    int failures_ = 0;
    std::chrono::steady_clock::time_point paused_until_{};
    bool resume_scheduled_ = false;
};

}  // namespace pglease
