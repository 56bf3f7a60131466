#include <iostream>
#include <string>
#include <vector>

#include "config/daemon_options.hpp"
#include "daemon.hpp"
#include "logging.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv, argv + argc);
    auto parsed = pglease::parse_daemon_options(args, std::cout, std::cerr);
    if (const int* exit_code = std::get_if<int>(&parsed)) {
        return *exit_code;
    }
    const auto& options = std::get<pglease::daemon_options>(parsed);
    pglease::init_logging(options.log_level);
    return pglease::run_daemon(options);
}
