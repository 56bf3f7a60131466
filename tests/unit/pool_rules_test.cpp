// The refill rule and the surplus rule of a pool, without PostgreSQL.
#include <gtest/gtest.h>

#include "pool/refill_rule.hpp"

namespace pglease {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

pool_demand pool(std::size_t idle, std::size_t creating, std::size_t clones, std::size_t waiters,
                 std::size_t min_idle = 2, std::size_t max_total = 8) {
    return {idle, creating, clones, waiters, min_idle, max_total};
}

TEST(refill_rule, waiters_come_before_warming_and_both_stop_at_max_total) {
    EXPECT_EQ(needs_clone(pool(0, 0, 1, 0)), refill_need::to_warm) << "warm to min_idle";
    EXPECT_EQ(needs_clone(pool(1, 1, 3, 0)), refill_need::none) << "idle + creating = min_idle";
    EXPECT_EQ(needs_clone(pool(0, 0, 5, 2)), refill_need::for_waiters);
    EXPECT_EQ(needs_clone(pool(0, 2, 5, 2)), refill_need::to_warm)
        << "the waiters are covered by clones under way; warming is next";
    EXPECT_EQ(needs_clone(pool(2, 2, 6, 2)), refill_need::none);
    EXPECT_EQ(needs_clone(pool(0, 0, 8, 3)), refill_need::none) << "at max_total";
    EXPECT_EQ(needs_clone(pool(0, 0, 8, 0, 2, 8)), refill_need::none);
}

TEST(refill_rule, clones_being_dropped_count_against_max_total) {
    // 2 leased, 2 being dropped, 0 idle, 3 waiting: max_total 4 is reached by the drops.
    EXPECT_EQ(needs_clone(pool(0, 0, 4, 3, 0, 4)), refill_need::none);
    EXPECT_EQ(needs_clone(pool(0, 0, 3, 3, 0, 4)), refill_need::for_waiters);
}

TEST(surplus_rule, a_surplus_goes_only_after_lasting_its_grace_with_nobody_waiting) {
    const auto t0 = system_clock::time_point(std::chrono::hours(1000));
    auto first = judge_surplus(pool(5, 0, 5, 0), std::nullopt, t0);
    EXPECT_EQ(first.since, t0);
    EXPECT_FALSE(first.trim);
    EXPECT_EQ(first.check_at, t0 + surplus_grace) << "one deadline to look again";

    auto later = judge_surplus(pool(5, 0, 5, 0), first.since, t0 + surplus_grace - 1ms);
    EXPECT_FALSE(later.trim);
    EXPECT_EQ(later.since, t0);

    auto due = judge_surplus(pool(5, 0, 5, 0), first.since, t0 + surplus_grace);
    EXPECT_TRUE(due.trim);
    EXPECT_FALSE(due.since);

    EXPECT_EQ(judge_surplus(pool(5, 0, 5, 1), t0, t0 + 1h).since, std::nullopt)
        << "a waiter ends the surplus";
    EXPECT_FALSE(judge_surplus(pool(5, 0, 5, 1), t0, t0 + 1h).trim);
    EXPECT_FALSE(judge_surplus(pool(2, 0, 5, 0), t0, t0 + 1h).trim) << "no more than min_idle";
    EXPECT_FALSE(judge_surplus(pool(2, 0, 5, 0), t0, t0 + 1h).check_at);
}

}  // namespace
}  // namespace pglease
