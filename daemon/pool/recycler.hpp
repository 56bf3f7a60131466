#pragma once

// The recycling seam: how a clone whose lease ended (released with recycle, expired, kept past
// its time) comes back to the pool. Each strategy owns nothing but what its recycling needs;
// the lease desk hands clones to it and never looks at what it does.

namespace pglease {

class template_pool;
struct clone;
class pool_operations;

/// A recycling strategy.
class recycler {
  public:
    virtual ~recycler() = default;
    /// Takes back `c` of `pool`, whose lease is over; the pool is whole again later.
    virtual void recycle(template_pool& pool, clone& c) = 0;
};

/// Drop and clone afresh: the clone is dropped, and the refill rule clones a replacement.
class reclone final : public recycler {
  public:
    explicit reclone(pool_operations& operations) : operations_(operations) {}
    void recycle(template_pool& pool, clone& c) override;

  private:
    pool_operations& operations_;
};

}  // namespace pglease
