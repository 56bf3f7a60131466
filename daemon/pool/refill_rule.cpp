#include "pool/refill_rule.hpp"

namespace pglease {

refill_need needs_clone(const pool_demand& pool) noexcept {
    if (pool.clones >= pool.max_total) {
        return refill_need::none;
    }
    const std::size_t coming = pool.idle + pool.creating;
    if (coming < pool.waiters) {
        return refill_need::for_waiters;
    }
    return coming < pool.min_idle + pool.waiters ? refill_need::to_warm : refill_need::none;
}

surplus_verdict judge_surplus(const pool_demand& pool,
                              std::optional<std::chrono::system_clock::time_point> since,
                              std::chrono::system_clock::time_point now) noexcept {
    if (pool.waiters > 0 || pool.idle <= pool.min_idle) {
        return {};
    }
    const auto started = since.value_or(now);
    if (now < started + surplus_grace) {
        return {started, false, started + surplus_grace};
    }
    return {std::nullopt, true, std::nullopt};
}

}  // namespace pglease
