#pragma once

// Owns the workers waiting for a clone, per template, in the order they asked. Only the lease
// desk joins and leaves; a clone that becomes free is handed to the longest waiter here.

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace pglease {

class template_pool;
struct clone;

/// One worker waiting in an acquire: woken when granted a clone, told to give up, or at the end
/// of its wait.
struct waiter {
    explicit waiter(const boost::asio::any_io_executor& executor) : wakeup(executor) {}
    boost::asio::steady_timer wakeup;
    template_pool* pool = nullptr;
    clone* granted = nullptr;
    /// The generation of the backend's memory the clone was granted in: older memory is gone.
    std::uint64_t granted_in = 0;
    /// Woken to give up now (a failed build, the broker stopping), not to wait on.
    bool give_up = false;
};

/// Waiting workers, first come first served, in lines: one per template for the workers that
/// take its newest version, and one per version for those that named it by fingerprint.
class waiting_line {
  public:
    using position = std::list<waiter*>::iterator;

    /// The line of the workers waiting for `template_name`'s version `fingerprint` by name.
    static std::string version_line(const std::string& template_name,
                                    const std::string& fingerprint);

    /// `w` waits in `line` (a template's name, or a version_line); the position lets it leave.
    position join(const std::string& line, waiter& w);
    /// `w` stops waiting without a clone (its wait ended).
    void leave(const std::string& line, position where);
    /// Hands `c`, a free clone of `pool`, to the longest waiting worker that named its version,
    /// else (when `newest`: the pool is its template's newest version) to the longest waiting
    /// for its template, which owns it from now on (leased); false when nobody waits.
    bool hand_over(template_pool& pool, clone& c, bool newest, std::uint64_t generation);
    /// Tells every worker waiting for `template_name`, any version, to give up now.
    void give_up(const std::string& template_name);
    /// Tells every waiting worker to give up now (the broker stops).
    void give_up_all();

    /// Workers waiting in `line`.
    std::size_t count(const std::string& line) const noexcept;
    /// Workers waiting for `template_name`, any version.
    std::size_t count_all(const std::string& template_name) const noexcept;
    /// Workers a clone of `pool` would serve.
    std::size_t count_for(const template_pool& pool, bool newest) const noexcept;

  private:
    std::map<std::string, std::list<waiter*>> lines_;
};

}  // namespace pglease
