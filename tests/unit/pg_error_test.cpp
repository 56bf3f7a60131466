#include "pg/pg_error.hpp"

#include <gtest/gtest.h>

namespace pglease::pg {
namespace {

template <typename Expected>
void expect_thrown_as(std::string_view sqlstate) {
    try {
        throw_server_error("PQgetResult", "something failed", sqlstate);
    } catch (const Expected& e) {
        EXPECT_EQ(e.sqlstate(), sqlstate);
        EXPECT_EQ(e.call(), "PQgetResult");
        return;
    } catch (const std::exception& e) {
        ADD_FAILURE() << sqlstate << " was thrown as the wrong type: " << e.what();
        return;
    }
}

TEST(pg_error, message_names_the_call_and_sqlstate) {
    const pg_error error("PQconnectPoll", "connection refused", "08001");
    EXPECT_STREQ(error.what(), "PQconnectPoll: connection refused (SQLSTATE 08001)");
    EXPECT_EQ(error.message(), "connection refused");
}

TEST(pg_error, message_without_sqlstate_has_no_decoration) {
    const pg_error error("PQflush", "lost");
    EXPECT_STREQ(error.what(), "PQflush: lost");
    EXPECT_TRUE(error.sqlstate().empty());
}

TEST(pg_error, sqlstates_map_to_error_types) {
    expect_thrown_as<duplicate_object_error>("42P04");
    expect_thrown_as<duplicate_object_error>("42710");
    expect_thrown_as<undefined_object_error>("3D000");
    expect_thrown_as<undefined_object_error>("42P01");
    expect_thrown_as<object_in_use_error>("55006");
    expect_thrown_as<timeout_error>("57014");
    expect_thrown_as<connection_error>("57P01");
    expect_thrown_as<connection_error>("08006");
    expect_thrown_as<server_error>("22012");
}

TEST(pg_error, lost_connection_states) {
    EXPECT_TRUE(sqlstate_means_connection_lost("08003"));
    EXPECT_TRUE(sqlstate_means_connection_lost("57P01"));
    EXPECT_FALSE(sqlstate_means_connection_lost("57014"));
    EXPECT_FALSE(sqlstate_means_connection_lost(""));
}

}  // namespace
}  // namespace pglease::pg
