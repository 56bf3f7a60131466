#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "embedded/embedded_cluster.hpp"

namespace pglease {

/// Where a template's schema comes from.
enum class source_kind { migrations, database, command };

/// How many clones a pool keeps and how it makes them.
struct pool_settings {
    /// "min_idle": idle clones kept warm.
    int min_idle = 2;
    /// "max_total": cap on the pool's clones, leased ones included.
    int max_total = 16;
    /// "strategy": CREATE DATABASE's STRATEGY, FILE_COPY or WAL_LOG (stored upper-case).
    std::string strategy = "FILE_COPY";
    /// "recycle": how a clone whose lease ended is made fresh again: "reset" (in place, undoing
    /// what the lease touched; drop and clone when that cannot be proven exact) or "reclone".
    std::string recycle = "reset";
    /// Client-initialized templates ("defaults.version_idle_seconds"): a version no lease took
    /// for this long keeps no warm clones, and an older one is evicted once its leases end.
    std::chrono::seconds version_idle{4 * 3600};
};

/// Durations a lease may last, be kept and be waited for.
struct lease_settings {
    /// "ttl_seconds": lifetime of a lease that asks for none.
    std::chrono::seconds ttl{600};
    /// "max_ttl_seconds": cap on a lease's lifetime, renewals included.
    std::chrono::seconds max_ttl{3600};
    /// "keep_seconds": how long a `keep` release retains its clone when it names no time.
    std::chrono::seconds keep{3600};
    /// "max_keep_seconds": cap on a `keep` release's time.
    std::chrono::seconds max_keep{86400};
    /// "wait_seconds": how long an acquire waits for a clone when it names no time.
    std::chrono::seconds wait{30};
    /// "max_wait_seconds": cap on an acquire's wait.
    std::chrono::seconds max_wait{600};
};

/// A configured template: where its schema comes from, and its pool and lease settings.
struct template_settings {
    std::string name;
    source_kind kind = source_kind::migrations;
    /// "migrations": directory of .sql files (absolute).
    std::filesystem::path migrations;
    /// "database": an existing database on the backend.
    std::string database;
    /// "command": shell command (run with sh -c) that migrates DATABASE_URL.
    std::string command;
    /// "watch": files and directories whose contents fingerprint a command template (absolute).
    std::vector<std::filesystem::path> watch;
    /// "fingerprint": a user-given fingerprint that replaces the computed one.
    std::optional<std::string> fingerprint;
    /// "lease_role": role handed to workers for this template; empty means the backend's.
    std::string lease_role;
    /// "lease_password": the password of lease_role.
    std::string lease_password;
    /// "build_timeout_seconds": how long building one template version may take.
    std::chrono::seconds build_timeout{600};
    /// "pool": defaults to the "defaults" section key by key.
    pool_settings pool;
    /// "lease": defaults to the "defaults" section key by key.
    lease_settings lease;
};

/// A PostgreSQL server pglease administers instead of the embedded cluster.
struct backend_settings {
    /// "name": [a-z][a-z0-9_]{0,30}.
    std::string name = "main";
    /// "url": libpq URI or conninfo of an admin role with CREATEDB.
    std::string url;
    /// "max_parallel_clones": clones created at once (1..64).
    int max_parallel_clones = 2;
    /// "max_databases": cap on pglease's databases on this server (1..100000).
    int max_databases = 200;
    /// "lease_role": role workers connect as.
    std::string lease_role = "pglease_worker";
    /// "lease_password": the password of lease_role.
    std::string lease_password;
    /// "per_lease_roles": each lease gets a LOGIN role of its own, the only one that may
    /// connect to its clone (the admin role needs CREATEROLE).
    bool per_lease_roles = false;
};

/// Everything pgleased is configured with: built-in defaults, overridden by the config file,
/// then by PGLEASE_* variables, then by command-line flags.
struct settings {
    /// "listen", --listen, PGLEASE_LISTEN: host:port of the HTTP API.
    std::string listen = "127.0.0.1:7432";
    /// The bearer token /v1 requests must carry: PGLEASE_TOKEN, else the first line of
    /// "token_file" (--token-file, PGLEASE_TOKEN_FILE). Empty: no token needed.
    std::string token;
    /// "prefix", --prefix, PGLEASE_PREFIX: name prefix of every database pglease manages.
    std::string prefix = "pglease_";
    /// "log_level", --log-level, PGLEASE_LOG_LEVEL: trace, debug, info, warn or error.
    std::string log_level = "info";
    /// "log_format", --log-format, PGLEASE_LOG_FORMAT: text, or json (one object per line).
    std::string log_format = "text";
    /// --config, PGLEASE_CONFIG: the JSON config file (absolute).
    std::optional<std::filesystem::path> config_file;
    /// "data_dir", "pg_port", "run_as", "pg_bin_dir", "max_connections" and their flags.
    embedded_cluster_options embedded;
    /// "embedded.max_parallel_clones": like backend_settings::max_parallel_clones.
    int embedded_max_parallel_clones = 2;
    /// "embedded.max_databases": like backend_settings::max_databases.
    int embedded_max_databases = 200;
    /// "embedded.per_lease_roles": like backend_settings::per_lease_roles.
    bool embedded_per_lease_roles = false;
    /// "backends": empty means the embedded cluster is used.
    std::vector<backend_settings> backends;
    /// "defaults.pool": pool settings of every template and of client-initialized ones.
    pool_settings default_pool;
    /// "defaults.version_idle_seconds": see pool_settings::version_idle.
    std::chrono::seconds default_version_idle{4 * 3600};
    /// "defaults.lease": lease settings of every template and of client-initialized ones.
    lease_settings default_lease;
    /// "templates", by name.
    std::map<std::string, template_settings> templates;
};

/// Parses args (args[0] = program name), the PGLEASE_* environment and the --config file.
/// Returns the settings, or an exit code when the arguments asked for --help/--version (printed to
/// `out`, code 0) or anything was wrong (one line per problem printed to `err`, code 2).
std::variant<settings, int> parse_settings(const std::vector<std::string>& args, std::ostream& out,
                                           std::ostream& err);

/// The problem with a template name, or std::nullopt: [a-z][a-z0-9_]{0,26}.
std::optional<std::string> template_name_problem(std::string_view name);

/// The cross-field problems of `s`, each naming its key path; empty when it is valid.
std::vector<std::string> validate(const settings& s);

}  // namespace pglease
