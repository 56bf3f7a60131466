#pragma once

#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "embedded/embedded_cluster.hpp"

namespace pglease {

/// Everything pgleased is told on its command line and in PGLEASE_* variables.
struct daemon_options {
    embedded_cluster_options cluster;
    /// trace, debug, info, warn, error.
    std::string log_level = "info";
};

/// Parses `args` (args[0] is the program name) and the PGLEASE_* environment. Returns the options,
/// or the exit code when the arguments asked for help or version (printed to `out`) or were wrong
/// (the problem printed to `err`).
std::variant<daemon_options, int> parse_daemon_options(const std::vector<std::string>& args,
                                                       std::ostream& out, std::ostream& err);

}  // namespace pglease
