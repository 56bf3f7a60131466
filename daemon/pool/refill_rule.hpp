#pragma once

// The refill rule and the surplus rule of a pool, as pure functions of its counts: which pool
// needs a clone, and when idle clones beyond the warm target go. Pool operations apply them.

#include <chrono>
#include <cstddef>
#include <optional>

namespace pglease {

/// What the rules look at in one pool of a template version.
struct pool_demand {
    std::size_t idle = 0;
    /// Being created, or reset in place: idle soon.
    std::size_t creating = 0;
    /// Every clone of the version, those being dropped included: each holds a database.
    std::size_t clones = 0;
    std::size_t waiters = 0;
    std::size_t min_idle = 0;
    std::size_t max_total = 0;
};

/// Why a pool needs one more clone: for workers waiting now, or to warm it to min_idle.
enum class refill_need { none, for_waiters, to_warm };

/// While idle + creating < min_idle + waiters and clones < max_total, clone; clones for waiters
/// go before drops, warming after them.
refill_need needs_clone(const pool_demand& pool) noexcept;

/// How long idle clones beyond min_idle stay while nobody waits. Clones released with reuse
/// come back as a surplus between their tests: dropping them at once would clone and drop one
/// database per lease.
inline constexpr std::chrono::seconds surplus_grace{10};

/// What to do about a pool's surplus of idle clones now.
struct surplus_verdict {
    /// Since when the surplus has lasted (std::nullopt: there is none).
    std::optional<std::chrono::system_clock::time_point> since;
    /// Drop the idle clones beyond min_idle now.
    bool trim = false;
    /// Look again then (the surplus may still be there).
    std::optional<std::chrono::system_clock::time_point> check_at;
};

/// The surplus rule: idle clones beyond min_idle are dropped once they have lasted
/// surplus_grace with nobody waiting.
surplus_verdict judge_surplus(const pool_demand& pool,
                              std::optional<std::chrono::system_clock::time_point> since,
                              std::chrono::system_clock::time_point now) noexcept;

}  // namespace pglease
