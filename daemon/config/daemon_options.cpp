#include "config/daemon_options.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>

namespace pglease {

std::variant<daemon_options, int> parse_daemon_options(const std::vector<std::string>& args,
                                                       std::ostream& out, std::ostream& err) {
    daemon_options options;
    CLI::App app{
        "pgleased keeps warm pools of pre-migrated PostgreSQL databases and leases them to "
        "test workers.\n\nWith no backend configured it starts a private PostgreSQL cluster of its "
        "own (the embedded cluster), on RAM-backed storage when there is room. Every option can "
        "also be set with the PGLEASE_* variable shown beside it; the command line wins.",
        "pgleased"};
    app.get_formatter()->column_width(34);
    app.set_version_flag("--version", std::string("pgleased ") + PGLEASE_VERSION);

    std::string data_dir;
    app.add_option("--data-dir", data_dir,
                   "Directory of the embedded cluster (created if missing; initdb on first use). "
                   "Default: /dev/shm/pglease-<uid> when /dev/shm is RAM-backed with 512 MiB "
                   "free, else ./.pglease")
        ->envname("PGLEASE_DATA_DIR");
    int port = 0;
    app.add_option("--pg-port", port,
                   "TCP port of the embedded cluster on 127.0.0.1. Default: a free port")
        ->envname("PGLEASE_PG_PORT")
        ->check(CLI::Range(1, 65535));
    app.add_option("--run-as", options.cluster.run_as,
                   "OS user that runs the embedded cluster when pgleased runs as root "
                   "(PostgreSQL refuses root)")
        ->envname("PGLEASE_RUN_AS")
        ->capture_default_str();
    std::string bin_dir;
    app.add_option("--pg-bin-dir", bin_dir,
                   "Directory of the PostgreSQL server programs (postgres, initdb). Default: "
                   "`pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin")
        ->envname("PGLEASE_PG_BIN_DIR");
    app.add_option("--max-connections", options.cluster.max_connections,
                   "max_connections of the embedded cluster")
        ->envname("PGLEASE_MAX_CONNECTIONS")
        ->check(CLI::Range(10, 10000))
        ->capture_default_str();
    app.add_option("--log-level", options.log_level, "Log level")
        ->envname("PGLEASE_LOG_LEVEL")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();

    std::vector<const char*> argv;
    argv.reserve(args.size());
    for (const auto& arg : args) {
        argv.push_back(arg.c_str());
    }
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        return app.exit(e, out, err);
    }
    if (!data_dir.empty()) {
        options.cluster.data_dir = data_dir;
    }
    if (port != 0) {
        options.cluster.port = static_cast<std::uint16_t>(port);
    }
    if (!bin_dir.empty()) {
        options.cluster.bin_dir = bin_dir;
    }
    return options;
}

}  // namespace pglease
