#include "pg/conninfo.hpp"

#include <gtest/gtest.h>

#include "pg/identifier.hpp"

namespace pglease::pg {
namespace {

TEST(conninfo, values_are_quoted_and_escaped) {
    EXPECT_EQ(conninfo_value("plain"), "'plain'");
    EXPECT_EQ(conninfo_value("it's"), R"('it\'s')");
    EXPECT_EQ(conninfo_value(R"(back\slash)"), R"('back\\slash')");
    EXPECT_EQ(conninfo_value("with space"), "'with space'");
}

TEST(conninfo, empty_values_are_left_out) {
    EXPECT_EQ(make_conninfo({{"host", "/tmp/x"}, {"password", ""}, {"dbname", "a b"}}),
              "host='/tmp/x' dbname='a b'");
}

TEST(conninfo, a_session_setting_joins_the_options_a_url_already_has) {
    const auto plain = parse_conninfo(with_session_setting("postgresql://admin:pw@db:5433/postgres",
                                                           "synchronous_commit", "local"));
    EXPECT_EQ(plain.at("options"), "-c synchronous_commit=local");
    EXPECT_EQ(plain.at("host"), "db");
    EXPECT_EQ(plain.at("port"), "5433");
    EXPECT_EQ(plain.at("password"), "pw");
    const auto more = parse_conninfo(with_session_setting(
        "host=/tmp user=admin options='-c search_path=x'", "synchronous_commit", "local"));
    EXPECT_EQ(more.at("options"), "-c search_path=x -c synchronous_commit=local");
    EXPECT_EQ(more.at("user"), "admin");
}

TEST(identifier, problems_are_named) {
    EXPECT_FALSE(identifier_problem("pglease_app_1"));
    EXPECT_EQ(identifier_problem(""), "is empty");
    EXPECT_FALSE(identifier_problem(std::string(63, 'a')));
    const auto too_long = identifier_problem(std::string(64, 'a'));
    ASSERT_TRUE(too_long);
    EXPECT_NE(too_long->find("64 bytes"), std::string::npos);
    EXPECT_EQ(identifier_problem(std::string("a\0b", 3)), "contains a NUL byte");
}

}  // namespace
}  // namespace pglease::pg
