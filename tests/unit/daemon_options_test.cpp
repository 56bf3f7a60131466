#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "config/daemon_options.hpp"

namespace pglease {
namespace {

struct parsed {
    std::variant<daemon_options, int> result;
    std::string out;
    std::string err;
};

parsed parse(std::vector<std::string> args) {
    args.insert(args.begin(), "pgleased");
    std::ostringstream out;
    std::ostringstream err;
    auto result = parse_daemon_options(args, out, err);
    return {std::move(result), out.str(), err.str()};
}

TEST(daemon_options, no_arguments_gives_the_embedded_defaults) {
    auto p = parse({});
    ASSERT_TRUE(std::holds_alternative<daemon_options>(p.result)) << p.err;
    const auto& options = std::get<daemon_options>(p.result);
    EXPECT_FALSE(options.cluster.data_dir);
    EXPECT_FALSE(options.cluster.port);
    EXPECT_EQ(options.cluster.run_as, "postgres");
    EXPECT_EQ(options.log_level, "info");
}

TEST(daemon_options, flags_are_read) {
    auto p = parse({"--data-dir", "/srv/pglease", "--pg-port", "6543", "--run-as", "nobody",
                    "--pg-bin-dir", "/opt/pg/bin", "--max-connections", "50", "--log-level",
                    "debug"});
    ASSERT_TRUE(std::holds_alternative<daemon_options>(p.result)) << p.err;
    const auto& options = std::get<daemon_options>(p.result);
    EXPECT_EQ(options.cluster.data_dir, "/srv/pglease");
    EXPECT_EQ(options.cluster.port, 6543);
    EXPECT_EQ(options.cluster.run_as, "nobody");
    EXPECT_EQ(options.cluster.bin_dir, "/opt/pg/bin");
    EXPECT_EQ(options.cluster.max_connections, 50);
    EXPECT_EQ(options.log_level, "debug");
}

TEST(daemon_options, environment_sets_and_flags_override) {
    ::setenv("PGLEASE_DATA_DIR", "/from/env", 1);
    ::setenv("PGLEASE_PG_PORT", "7000", 1);
    auto from_env = parse({});
    auto overridden = parse({"--data-dir", "/from/flag"});
    ::unsetenv("PGLEASE_DATA_DIR");
    ::unsetenv("PGLEASE_PG_PORT");
    ASSERT_TRUE(std::holds_alternative<daemon_options>(from_env.result)) << from_env.err;
    EXPECT_EQ(std::get<daemon_options>(from_env.result).cluster.data_dir, "/from/env");
    EXPECT_EQ(std::get<daemon_options>(from_env.result).cluster.port, 7000);
    ASSERT_TRUE(std::holds_alternative<daemon_options>(overridden.result));
    EXPECT_EQ(std::get<daemon_options>(overridden.result).cluster.data_dir, "/from/flag");
}

TEST(daemon_options, bad_values_fail_with_a_message_naming_the_option) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--pg-port", "70000"},
             {"--pg-port", "abc"},
             {"--log-level", "loud"},
             {"--max-connections", "1"},
             {"--no-such-flag"}}) {
        auto p = parse(args);
        ASSERT_TRUE(std::holds_alternative<int>(p.result)) << args[0];
        EXPECT_NE(std::get<int>(p.result), 0) << args[0];
        EXPECT_NE(p.err.find(args[0]), std::string::npos) << p.err;
    }
}

TEST(daemon_options, help_documents_every_flag_and_its_variable) {
    auto p = parse({"--help"});
    ASSERT_TRUE(std::holds_alternative<int>(p.result));
    EXPECT_EQ(std::get<int>(p.result), 0);
    for (const char* text : {"--data-dir", "PGLEASE_DATA_DIR", "--pg-port", "PGLEASE_PG_PORT",
                             "--run-as", "PGLEASE_RUN_AS", "--pg-bin-dir", "PGLEASE_PG_BIN_DIR",
                             "--max-connections", "PGLEASE_MAX_CONNECTIONS", "--log-level",
                             "PGLEASE_LOG_LEVEL", "--version", "--help", "/dev/shm"}) {
        EXPECT_NE(p.out.find(text), std::string::npos) << "help does not mention " << text;
    }
}

}  // namespace
}  // namespace pglease
