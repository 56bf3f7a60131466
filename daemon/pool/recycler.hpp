#pragma once

// The recycling seam: how a clone whose lease ended (released with recycle, expired, kept past
// its time) comes back fresh, and how a leased clone is made fresh for its holder (a sticky
// lease's reset). The lease desk hands clones to a recycler and never looks at what it does.
// Two strategies: reclone (drop, and the refill rule clones afresh) and reset_in_place
// (pool/reset_in_place.hpp), which falls back to reclone when it cannot prove a reset exact.

#include <string>

#include <boost/asio/awaitable.hpp>

#include "catalog/catalog_comment.hpp"

namespace pglease {

namespace pg {
class connection_pool;
}
class template_pool;
class template_set;
class pool_operations;
struct backend_endpoint;
struct clone;

/// What making a leased clone fresh came to: "reset" (in place) or "reclone" (cloned again
/// under its name: its sessions ended), and why when recloned.
struct refresh_outcome {
    std::string result;
    std::string reason;
};

/// Why a clone's lease ended, which decides what its last holder may still do with it.
enum class recycle_cause {
    /// Released (recycle), or a reuse whose sessions would not end: its holder said it is done.
    released,
    /// Its lease expired, or the time it was kept for is over: its holder vanished or is
    /// inspecting it, and may still connect with the DSN it was given. Such a clone is cloned
    /// again under a new name, so that the DSN cannot reach whoever holds it next.
    unattended,
};

/// A recycling strategy.
class recycler {
  public:
    virtual ~recycler() = default;
    /// Takes back `c` of `pool`, whose lease is over; the pool is whole again later.
    virtual void recycle(template_pool& pool, clone& c, recycle_cause cause) = 0;
    /// Makes leased clone `c` as fresh as a new clone for the holder of `lease`, which goes on:
    /// same database, same name. Throws broker_error when it cannot now.
    virtual boost::asio::awaitable<refresh_outcome> refresh(template_pool& pool, clone& c,
                                                            lease_record lease) = 0;
};

/// Drop and clone afresh. A leased clone is cloned again under its own name.
class reclone final : public recycler {
  public:
    reclone(pool_operations& operations, pg::connection_pool& connections,
            const backend_endpoint& endpoint, template_set& templates)
        : operations_(operations),
          connections_(connections),
          endpoint_(endpoint),
          templates_(templates) {}
    void recycle(template_pool& pool, clone& c, recycle_cause cause) override;
    boost::asio::awaitable<refresh_outcome> refresh(template_pool& pool, clone& c,
                                                    lease_record lease) override;

  private:
    pool_operations& operations_;
    pg::connection_pool& connections_;
    const backend_endpoint& endpoint_;
    template_set& templates_;
};

}  // namespace pglease
