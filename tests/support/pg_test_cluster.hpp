#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "embedded/embedded_cluster.hpp"

namespace pglease::test {

/// The real PostgreSQL every *_pgtest binary shares: one embedded cluster per test binary run,
/// in a temporary directory on RAM-backed storage, removed at the end.
class pg_test_cluster : public ::testing::Environment {
  public:
    void SetUp() override;
    void TearDown() override;

    /// The running cluster.
    static embedded_cluster& cluster();
    /// A new, empty database named for the current test (dropped first if a rerun left it);
    /// returns the superuser's connection string to it.
    static std::string fresh_database();
    /// A directory for the current binary's scratch files (inside the cluster's temp dir).
    static std::string scratch_dir();

  private:
    struct state;
    static std::unique_ptr<state>& instance();
};

}  // namespace pglease::test
