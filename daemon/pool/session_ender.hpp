#pragma once

// Ends the sessions connected to a clone: signals them, then waits for them to exit with
// fine-grained polling, bounded. It owns nothing but its patience; its connections are the
// shard's session pool, which no lease or catalog write waits behind.

#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace pglease {

namespace pg {
class connection_pool;
}

class session_ender {
  public:
    explicit session_ender(pg::connection_pool& connections) : connections_(connections) {}

    /// Signals every session on `database` to end and waits until they have, at most
    /// `patience`. True when none is left; false when one would not end in time (its clone
    /// must not be handed out as it is).
    boost::asio::awaitable<bool> end_sessions(std::string database,
                                              std::chrono::milliseconds patience);
    /// Waits until no session is left on `database` (its sessions were signaled), at most
    /// `patience`. True when none is left.
    boost::asio::awaitable<bool> wait_ended(std::string database,
                                            std::chrono::milliseconds patience);

    /// The statement that signals every session on the databases `names` (each an SQL literal,
    /// quoted already, comma-separated): one row (name, the sessions signaled as "{1,2}") per
    /// database that had sessions.
    static std::string signal_statement(const std::string& names);
    /// The statement that lists which of the databases `names` (as for signal_statement) have
    /// sessions, one row each: far cheaper to plan than the signal.
    static std::string count_statement(const std::string& names);

  private:
    pg::connection_pool& connections_;
};

}  // namespace pglease
