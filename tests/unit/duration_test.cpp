#include <pglease/client.hpp>

#include <gtest/gtest.h>

namespace {

using pglease::client::parse_duration;
using std::chrono::seconds;

TEST(parse_duration, reads_seconds_minutes_hours_and_combinations) {
    EXPECT_EQ(parse_duration("90s"), seconds(90));
    EXPECT_EQ(parse_duration("10m"), seconds(600));
    EXPECT_EQ(parse_duration("1h"), seconds(3600));
    EXPECT_EQ(parse_duration("1h30m"), seconds(5400));
    EXPECT_EQ(parse_duration("2d"), seconds(172800));
    EXPECT_EQ(parse_duration("45"), seconds(45));
    EXPECT_EQ(parse_duration("0s"), seconds(0));
}

TEST(parse_duration, refuses_what_it_cannot_read) {
    for (const char* bad : {"", "5x", "m", "1h30", "-5s", "1.5h", "10 m", "99999999999999999s"}) {
        EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
    }
}

}  // namespace
