#pragma once

#include <string>

namespace pglease {

/// Sends log lines to stderr at `level` (trace, debug, info, warn, error).
void init_logging(const std::string& level);

}  // namespace pglease
