#include "logging.hpp"

#include <chrono>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace pglease {
namespace {

using namespace std::chrono_literals;

TEST(log_rate_limit, lets_a_burst_through_then_counts_what_it_holds_back) {
    log_rate_limit limit(5, 60s);
    const auto start = std::chrono::steady_clock::time_point{} + 1h;
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(limit.admit("clone_failed template=app", start + i * 1s), 0u) << i;
    }
    for (int i = 5; i < 12; ++i) {
        EXPECT_EQ(limit.admit("clone_failed template=app", start + i * 1s), std::nullopt) << i;
    }
    // Another kind has its own budget.
    EXPECT_EQ(limit.admit("backend_lost backend=main", start + 12s), 0u);
    // A new window: the first line through reports the 7 held back.
    EXPECT_EQ(limit.admit("clone_failed template=app", start + 61s), 7u);
    EXPECT_EQ(limit.admit("clone_failed template=app", start + 62s), 0u);
}

TEST(json_log_line, is_one_object_with_context_pairs_as_fields) {
    const auto line = json_log_line("2026-01-02T03:04:05.678+00:00", "warning",
                                    "template=app db=pglease_app_1a2b3c4d_7 clone failed: "
                                    "ERROR: \"quoted\"\nsecond line level=ignored =x y=");
    const auto parsed = nlohmann::json::parse(line);
    EXPECT_EQ(line.find('\n'), std::string::npos) << "one line";
    EXPECT_EQ(parsed["time"], "2026-01-02T03:04:05.678+00:00");
    EXPECT_EQ(parsed["level"], "warning");
    EXPECT_EQ(parsed["template"], "app");
    EXPECT_EQ(parsed["db"], "pglease_app_1a2b3c4d_7");
    EXPECT_EQ(parsed["message"].get<std::string>().substr(0, 12), "template=app");
    EXPECT_FALSE(parsed.contains("y")) << "a key without a value is not a field";
    EXPECT_FALSE(parsed.contains("")) << "a value without a key is not a field";
    // "level" is taken by the line's own level.
    EXPECT_EQ(parsed["level"], "warning");
}

TEST(json_log_line, replaces_invalid_utf8_instead_of_failing) {
    const auto parsed = nlohmann::json::parse(json_log_line("t", "info", "bad \xff byte"));
    EXPECT_NE(parsed["message"].get<std::string>().find("bad"), std::string::npos);
}

}  // namespace
}  // namespace pglease
