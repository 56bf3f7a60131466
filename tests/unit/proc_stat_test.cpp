#include "process/proc_stat.hpp"

#include <array>
#include <sys/prctl.h>

#include <gtest/gtest.h>

namespace pglease {
namespace {

TEST(proc_stat, fields_are_counted_after_a_command_name_with_spaces_and_parentheses) {
    std::array<char, 17> original{};
    ASSERT_EQ(::prctl(PR_GET_NAME, original.data()), 0);
    ASSERT_EQ(::prctl(PR_SET_NAME, "a) b (c) 1 2 3"), 0);
    const auto stat = read_proc_stat();
    ::prctl(PR_SET_NAME, original.data());
    ASSERT_TRUE(stat.has_value());
    EXPECT_GT(stat->start_ticks, 0);
    EXPECT_GT(stat->virtual_bytes, stat->resident_pages);
    EXPECT_GT(stat->resident_pages, 0);
    EXPECT_GE(stat->utime_ticks + stat->stime_ticks, 0);
}

TEST(proc_stat, a_process_that_is_gone_has_none) {
    EXPECT_FALSE(read_proc_stat("999999999").has_value());
}

}  // namespace
}  // namespace pglease
