#include <gtest/gtest.h>

#include "support/pg_test_cluster.hpp"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    // gtest owns and deletes the environment.
    ::testing::AddGlobalTestEnvironment(new pglease::test::pg_test_cluster);
    return RUN_ALL_TESTS();
}
