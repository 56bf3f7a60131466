#include "config/setting_table.hpp"

#include <array>
#include <charconv>
#include <fstream>
#include <system_error>

#include <nlohmann/json.hpp>

namespace pglease {
namespace {

namespace fs = std::filesystem;
using problem = std::optional<std::string>;

constexpr int_range port_range{1, 65535};
// Port 0 asks the kernel for a free port (the log says which).
constexpr int_range listen_port_range{0, 65535};
constexpr int_range max_connections_range{10, 10000};
constexpr std::size_t max_prefix_length = 16;
constexpr std::array<std::string_view, 5> log_levels{"trace", "debug", "info", "warn", "error"};

problem read_path(std::string_view text, const fs::path& base, fs::path& out) {
    if (text.empty()) {
        return "must not be empty";
    }
    const fs::path given{std::string(text)};
    out = (given.is_absolute() ? given : base / given).lexically_normal();
    return std::nullopt;
}

problem read_int(std::string_view text, int_range range, int& out) {
    long long value = 0;
    if (auto p = parse_integer(text, range, value)) {
        return p;
    }
    out = static_cast<int>(value);
    return std::nullopt;
}

problem read_listen(std::string_view text, std::string& out) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return "expected host:port, got " + json_quoted(text);
    }
    const auto host = text.substr(0, colon);
    if (host.empty()) {
        return "the host is missing in " + json_quoted(text) + " (0.0.0.0:7432 listens everywhere)";
    }
    const bool bracketed = host.front() == '[';
    if (bracketed ? host.size() < 3 || host.back() != ']' : host.find(':') != host.npos) {
        return "an IPv6 address needs brackets, as in [::1]:7432; got " + json_quoted(text);
    }
    long long port = 0;
    if (auto p = parse_integer(text.substr(colon + 1), listen_port_range, port)) {
        return "port " + *p;
    }
    out = std::string(text);
    return std::nullopt;
}

problem read_log_level(std::string_view text, std::string& out) {
    for (const auto level : log_levels) {
        if (text == level) {
            out = std::string(text);
            return std::nullopt;
        }
    }
    return "expected one of trace, debug, info, warn, error, got " + json_quoted(text);
}

problem read_log_format(std::string_view text, std::string& out) {
    if (text != "text" && text != "json") {
        return "expected text or json, got " + json_quoted(text);
    }
    out = std::string(text);
    return std::nullopt;
}

std::string show_path(const std::optional<fs::path>& path) {
    return path ? path->string() : "";
}

constexpr std::array table{
    setting{
        .key = "",
        .flag = "--config",
        .env = "PGLEASE_CONFIG",
        .value_name = "FILE",
        .type = setting_type::path,
        .help = "JSON config file: any setting below, plus \"backends\", \"defaults\" and "
                "\"templates\"",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text, const fs::path& base) -> problem {
            fs::path file;
            if (auto p = read_path(text, base, file)) {
                return p;
            }
            s.config_file = file;
            return std::nullopt;
        },
        .show = [](const settings& s) { return show_path(s.config_file); },
    },
    setting{
        .key = "listen",
        .flag = "--listen",
        .env = "PGLEASE_LISTEN",
        .value_name = "HOST:PORT",
        .type = setting_type::text,
        .help = "Address of the HTTP API ([::1]:7432 for IPv6; port 0 picks a free port)",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text,
                    const fs::path&) { return read_listen(text, s.listen); },
        .show = [](const settings& s) { return s.listen; },
    },
    setting{
        .key = "prefix",
        .flag = "--prefix",
        .env = "PGLEASE_PREFIX",
        .value_name = "PREFIX",
        .type = setting_type::text,
        .help = "Name prefix of the databases pglease creates; it never touches others",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text, const fs::path&) -> problem {
            if (auto p = identifier_problem(text, max_prefix_length)) {
                return p;
            }
            s.prefix = std::string(text);
            return std::nullopt;
        },
        .show = [](const settings& s) { return s.prefix; },
    },
    setting{
        .key = "token_file",
        .flag = "--token-file",
        .env = "PGLEASE_TOKEN_FILE",
        .value_name = "FILE",
        .type = setting_type::path,
        .help = "File holding the bearer token every /v1 request must carry (or set the token "
                "itself in PGLEASE_TOKEN). Default: none, no token needed",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text, const fs::path& base) -> problem {
            const fs::path file = base / fs::path(text);
            std::ifstream in(file);
            std::string token;
            if (!in || !std::getline(in, token)) {
                return "cannot read a token from " + file.string();
            }
            while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) {
                token.pop_back();
            }
            if (token.empty()) {
                return "the first line of " + file.string() + " is empty";
            }
            s.token = token;
            return std::nullopt;
        },
        .show = [](const settings&) { return std::string(); },
    },
    setting{
        .key = "log_level",
        .flag = "--log-level",
        .env = "PGLEASE_LOG_LEVEL",
        .value_name = "LEVEL",
        .type = setting_type::text,
        .help = "Log level: trace, debug, info, warn or error",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text,
                    const fs::path&) { return read_log_level(text, s.log_level); },
        .show = [](const settings& s) { return s.log_level; },
    },
    setting{
        .key = "log_format",
        .flag = "--log-format",
        .env = "PGLEASE_LOG_FORMAT",
        .value_name = "FORMAT",
        .type = setting_type::text,
        .help = "Log lines as text, or as json (one object per line, for log shippers)",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text,
                    const fs::path&) { return read_log_format(text, s.log_format); },
        .show = [](const settings& s) { return s.log_format; },
    },
    setting{
        .key = "data_dir",
        .flag = "--data-dir",
        .env = "PGLEASE_DATA_DIR",
        .value_name = "DIR",
        .type = setting_type::path,
        .help = "Directory of the embedded cluster (created if missing; initdb on first use)",
        .automatic_default =
            "/dev/shm/pglease-<uid> when /dev/shm is RAM-backed with 512 MiB free, else ./.pglease",
        .apply = [](settings& s, std::string_view text, const fs::path& base) -> problem {
            fs::path dir;
            if (auto p = read_path(text, base, dir)) {
                return p;
            }
            s.embedded.data_dir = dir;
            return std::nullopt;
        },
        .show = [](const settings& s) { return show_path(s.embedded.data_dir); },
    },
    setting{
        .key = "pg_port",
        .flag = "--pg-port",
        .env = "PGLEASE_PG_PORT",
        .value_name = "PORT",
        .type = setting_type::integer,
        .help = "TCP port of the embedded cluster on 127.0.0.1",
        .automatic_default = "a free port",
        .apply = [](settings& s, std::string_view text, const fs::path&) -> problem {
            long long port = 0;
            if (auto p = parse_integer(text, port_range, port)) {
                return p;
            }
            s.embedded.port = static_cast<std::uint16_t>(port);
            return std::nullopt;
        },
        .show =
            [](const settings& s) {
                return s.embedded.port ? std::to_string(*s.embedded.port) : std::string();
            },
    },
    setting{
        .key = "run_as",
        .flag = "--run-as",
        .env = "PGLEASE_RUN_AS",
        .value_name = "USER",
        .type = setting_type::text,
        .help = "OS user that runs the embedded cluster when pgleased runs as root (PostgreSQL "
                "refuses root)",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text, const fs::path&) -> problem {
            if (text.empty()) {
                return "must not be empty";
            }
            s.embedded.run_as = std::string(text);
            return std::nullopt;
        },
        .show = [](const settings& s) { return s.embedded.run_as; },
    },
    setting{
        .key = "pg_bin_dir",
        .flag = "--pg-bin-dir",
        .env = "PGLEASE_PG_BIN_DIR",
        .value_name = "DIR",
        .type = setting_type::path,
        .help = "Directory of the PostgreSQL server programs (postgres, initdb)",
        .automatic_default = "`pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin",
        .apply = [](settings& s, std::string_view text, const fs::path& base) -> problem {
            fs::path dir;
            if (auto p = read_path(text, base, dir)) {
                return p;
            }
            s.embedded.bin_dir = dir;
            return std::nullopt;
        },
        .show = [](const settings& s) { return show_path(s.embedded.bin_dir); },
    },
    setting{
        .key = "max_connections",
        .flag = "--max-connections",
        .env = "PGLEASE_MAX_CONNECTIONS",
        .value_name = "N",
        .type = setting_type::integer,
        .help = "max_connections of the embedded cluster (10..10000)",
        .automatic_default = "",
        .apply =
            [](settings& s, std::string_view text, const fs::path&) {
                return read_int(text, max_connections_range, s.embedded.max_connections);
            },
        .show = [](const settings& s) { return std::to_string(s.embedded.max_connections); },
    },
    setting{
        .key = "embedded.max_parallel_clones",
        .flag = "--max-parallel-clones",
        .env = "PGLEASE_MAX_PARALLEL_CLONES",
        .value_name = "N",
        .type = setting_type::integer,
        .help = "Clones the embedded cluster creates at once (1..64)",
        .automatic_default = "",
        .apply =
            [](settings& s, std::string_view text, const fs::path&) {
                return read_int(text, parallel_clones_range, s.embedded_max_parallel_clones);
            },
        .show = [](const settings& s) { return std::to_string(s.embedded_max_parallel_clones); },
    },
    setting{
        .key = "embedded.max_databases",
        .flag = "--max-databases",
        .env = "PGLEASE_MAX_DATABASES",
        .value_name = "N",
        .type = setting_type::integer,
        .help = "Cap on pglease's databases in the embedded cluster, every template together "
                "(1..100000)",
        .automatic_default = "",
        .apply =
            [](settings& s, std::string_view text, const fs::path&) {
                return read_int(text, databases_range, s.embedded_max_databases);
            },
        .show = [](const settings& s) { return std::to_string(s.embedded_max_databases); },
    },
    setting{
        .key = "embedded.per_lease_roles",
        .flag = "--per-lease-roles",
        .env = "PGLEASE_PER_LEASE_ROLES",
        .value_name = "true|false",
        .type = setting_type::boolean,
        .help = "Give each lease of the embedded cluster a LOGIN role of its own, the only one "
                "that may connect to its clone",
        .automatic_default = "",
        .apply = [](settings& s, std::string_view text,
                    const fs::path&) -> std::optional<std::string> {
            if (text == "true" || text == "1") {
                s.embedded_per_lease_roles = true;
            } else if (text == "false" || text == "0") {
                s.embedded_per_lease_roles = false;
            } else {
                return "expected true or false, got " + json_quoted(text);
            }
            return std::nullopt;
        },
        .show =
            [](const settings& s) {
                return std::string(s.embedded_per_lease_roles ? "true" : "false");
            },
    },
};

}  // namespace

std::span<const setting> setting_table() {
    return table;
}

std::optional<std::string> identifier_problem(std::string_view name, std::size_t max_length) {
    const std::string pattern = "[a-z][a-z0-9_]{0," + std::to_string(max_length - 1) + "}";
    if (name.empty()) {
        return "is empty; it must match " + pattern;
    }
    if (name.size() > max_length) {
        return json_quoted(name) + " is " + std::to_string(name.size()) + " bytes long; at most " +
               std::to_string(max_length) + " are allowed";
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool allowed =
            (c >= 'a' && c <= 'z') || (i > 0 && ((c >= '0' && c <= '9') || c == '_'));
        if (!allowed) {
            return json_quoted(name) + " must match " + pattern + ": " + (i == 0 ? "first " : "") +
                   json_quoted(std::string_view(&name[i], 1)) + " is not allowed";
        }
    }
    return std::nullopt;
}

std::optional<std::string> parse_integer(std::string_view text, int_range range, long long& value) {
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
        return "expected an integer, got " + json_quoted(text);
    }
    if (ec == std::errc::result_out_of_range || value < range.min || value > range.max) {
        return "must be between " + std::to_string(range.min) + " and " +
               std::to_string(range.max) + ", got " + std::string(text);
    }
    return std::nullopt;
}

std::string json_quoted(std::string_view text) {
    return nlohmann::json(std::string(text))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pglease
