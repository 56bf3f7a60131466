#pragma once

// Owns every deadline of one backend — lease expiry, keep expiry, build expiry, surplus trims —
// and the one timer armed for the earliest of them. Only the lease table, the client builds and
// the pool operations add or remove deadlines; the shard runs the queue.

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/system_timer.hpp>

namespace pglease {

/// What falls due at a deadline.
enum class deadline_kind { lease_expiry, keep_expiry, build_expiry, surplus_trim };

/// The name used in logs.
std::string_view to_string(deadline_kind kind) noexcept;

/// One deadline: when, what, and the key of what it belongs to (a lease key, a clone or
/// template name).
struct deadline {
    std::chrono::system_clock::time_point when;
    deadline_kind kind;
    std::string key;

    friend auto operator<=>(const deadline&, const deadline&) = default;
};

/// Deadlines in time order on one timer: nothing runs while nothing is due.
class deadline_queue {
  public:
    explicit deadline_queue(const boost::asio::any_io_executor& executor);

    /// Adds a deadline; re-arms the timer when it is the new earliest.
    void add(std::chrono::system_clock::time_point when, deadline_kind kind, std::string key);
    /// Removes a deadline added before (no-op when it is not there).
    void remove(std::chrono::system_clock::time_point when, deadline_kind kind,
                const std::string& key);
    /// Forgets every deadline (the backend was lost; memory is rebuilt from the catalog).
    void clear() noexcept;

    /// The earliest deadline's time, if any.
    std::optional<std::chrono::system_clock::time_point> earliest() const;
    std::size_t size() const noexcept { return deadlines_.size(); }

    /// Waits for the earliest deadline, then calls `on_due` for each one due while `active()`
    /// holds; while it does not, due deadlines wait for wake(). Returns after stop().
    boost::asio::awaitable<void> run(std::function<void(const deadline&)> on_due,
                                     std::function<bool()> active);
    /// Makes run() look at the queue again now (the backend came back).
    void wake() { timer_.cancel(); }
    /// Ends run().
    void stop();

  private:
    std::set<deadline> deadlines_;
    boost::asio::system_timer timer_;
    bool stopped_ = false;
};

}  // namespace pglease
