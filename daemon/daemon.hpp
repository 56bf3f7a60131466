#pragma once

#include "config/settings.hpp"

namespace pglease {

/// Runs the daemon until SIGTERM or SIGINT; returns the process exit code.
int run_daemon(const settings& options);

}  // namespace pglease
