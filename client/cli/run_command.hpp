#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "pglease/client.hpp"

namespace pglease::cli {

/// What `pglease run` was asked to do.
struct run_options {
    std::string template_name;
    client::lease_options lease;
    client::release_mode on_success = client::release_mode::recycle;
    std::optional<std::chrono::seconds> keep_on_failure;
    std::vector<std::string> command;
};

/// Leases a database, runs the command with DATABASE_URL and PG* set while renewing the lease,
/// forwards SIGINT/SIGTERM/SIGHUP to it, releases when it ends, and returns its exit status
/// (128 + N when signal N ended it).
int run_command(client::client& server, const run_options& options);

}  // namespace pglease::cli
