#include <iostream>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "daemon.hpp"
#include "logging.hpp"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv, argv + argc);
    auto parsed = pglease::parse_settings(args, std::cout, std::cerr);
    if (const int* exit_code = std::get_if<int>(&parsed)) {
        return *exit_code;
    }
    const auto& options = std::get<pglease::settings>(parsed);
    pglease::init_logging(options.log_level, options.log_format);
    return pglease::run_daemon(options);
}
