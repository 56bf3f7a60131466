#pragma once

#include "config/daemon_options.hpp"

namespace pglease {

/// Runs the daemon until SIGTERM or SIGINT; returns the process exit code.
int run_daemon(const daemon_options& options);

}  // namespace pglease
