#include "config/settings.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace pglease {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr std::array<const char*, 18> all_variables{
    "PGLEASE_TOKEN",         "PGLEASE_TOKEN_FILE",      "PGLEASE_CONFIG",
    "PGLEASE_LISTEN",        "PGLEASE_PREFIX",          "PGLEASE_LOG_LEVEL",
    "PGLEASE_DATA_DIR",      "PGLEASE_PG_PORT",         "PGLEASE_RUN_AS",
    "PGLEASE_PG_BIN_DIR",    "PGLEASE_MAX_CONNECTIONS", "PGLEASE_MAX_PARALLEL_CLONES",
    "PGLEASE_MAX_DATABASES", "PGLEASE_PER_LEASE_ROLES", "PGLEASE_CONFIG_JSON",
    "PGLEASE_BACKEND_URL",   "PGLEASE_LEASE_ROLE",      "PGLEASE_LEASE_PASSWORD"};

/// Clears every PGLEASE_* variable for the test's duration, so the caller's shell cannot leak in.
class clean_environment {
  public:
    clean_environment() {
        for (const char* name : all_variables) {
            if (const char* value = std::getenv(name)) {
                saved_.emplace(name, value);
            }
            ::unsetenv(name);
        }
    }
    clean_environment(const clean_environment&) = delete;
    clean_environment& operator=(const clean_environment&) = delete;
    ~clean_environment() {
        for (const char* name : all_variables) {
            ::unsetenv(name);
        }
        for (const auto& [name, value] : saved_) {
            ::setenv(name.c_str(), value.c_str(), 1);
        }
    }

    void set(const std::string& name, const std::string& value) {
        ::setenv(name.c_str(), value.c_str(), 1);
    }

  private:
    std::map<std::string, std::string> saved_;
};

/// A fresh directory under the system's temporary directory, removed with its contents.
class temp_dir {
  public:
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "pglease-settings-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }

    const fs::path& path() const { return path_; }

    fs::path write(const fs::path& relative, const std::string& text) const {
        fs::path file = path_ / relative;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
        return file;
    }

    fs::path make_dir(const fs::path& relative) const {
        fs::create_directories(path_ / relative);
        return path_ / relative;
    }

  private:
    fs::path path_;
};

struct parsed {
    std::variant<settings, int> result;
    std::string out;
    std::string err;

    bool ok() const { return std::holds_alternative<settings>(result); }
    const settings& value() const { return std::get<settings>(result); }
    int exit_code() const { return ok() ? -1 : std::get<int>(result); }
};

parsed parse(std::vector<std::string> args) {
    args.insert(args.begin(), "pgleased");
    std::ostringstream out;
    std::ostringstream err;
    auto result = parse_settings(args, out, err);
    return {std::move(result), out.str(), err.str()};
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(settings, no_arguments_give_the_built_in_defaults) {
    clean_environment env;
    const auto p = parse({});
    ASSERT_TRUE(p.ok()) << p.err;
    const settings& s = p.value();
    EXPECT_EQ(s.listen, "127.0.0.1:7432");
    EXPECT_EQ(s.prefix, "pglease_");
    EXPECT_EQ(s.log_level, "info");
    EXPECT_FALSE(s.config_file);
    EXPECT_FALSE(s.embedded.data_dir);
    EXPECT_FALSE(s.embedded.port);
    EXPECT_FALSE(s.embedded.bin_dir);
    EXPECT_EQ(s.embedded.run_as, "postgres");
    EXPECT_EQ(s.embedded.max_connections, 300);
    EXPECT_EQ(s.embedded_max_parallel_clones, 2);
    EXPECT_EQ(s.embedded_max_databases, 200);
    EXPECT_FALSE(s.embedded_per_lease_roles);
    EXPECT_TRUE(s.backends.empty());
    EXPECT_TRUE(s.templates.empty());
    EXPECT_EQ(s.default_pool.min_idle, 2);
    EXPECT_EQ(s.default_pool.max_total, 16);
    EXPECT_EQ(s.default_pool.strategy, "FILE_COPY");
    EXPECT_EQ(s.default_lease.ttl, seconds(600));
    EXPECT_EQ(s.default_lease.max_ttl, seconds(3600));
    EXPECT_EQ(s.default_lease.wait, seconds(30));
    EXPECT_TRUE(p.err.empty()) << p.err;
}

TEST(settings, a_full_config_file_is_read) {
    clean_environment env;
    temp_dir dir;
    dir.write("db/migrations/0001_init.sql", "create table t (id int);\n");
    dir.write("alembic.ini", "[alembic]\n");
    dir.make_dir("alembic");
    const fs::path config = dir.write("etc/pglease.json", R"({
      "listen": "0.0.0.0:9000",
      "prefix": "ci_",
      "log_level": "debug",
      "data_dir": "state",
      "pg_port": 6543,
      "run_as": "nobody",
      "pg_bin_dir": "/opt/pg/bin",
      "max_connections": 500,
      "embedded": {"max_parallel_clones": 4, "max_databases": 50, "per_lease_roles": true},
      "backends": [
        {"name": "main", "url": "postgresql://admin@db1/postgres", "max_parallel_clones": 3,
         "max_databases": 400, "lease_role": "worker", "lease_password": "s3cret",
         "per_lease_roles": true},
        {"name": "replica_2", "url": "host=db2 user=admin", "lease_password": "other"}
      ],
      "defaults": {"pool": {"min_idle": 1, "strategy": "wal_log"},
                   "lease": {"ttl_seconds": 120, "wait_seconds": 10}},
      "templates": {
        "app": {"migrations": "../db/migrations",
                "pool": {"min_idle": 4, "max_total": 32, "strategy": "File_Copy"},
                "lease": {"ttl_seconds": 600, "max_ttl_seconds": 7200}},
        "legacy": {"database": "legacy_schema", "fingerprint": "v42",
                   "lease_role": "legacy_owner", "lease_password": "pw"},
        "web": {"command": "alembic upgrade head", "watch": ["../alembic.ini", "../alembic"],
                "build_timeout_seconds": 120,
                "lease": {"keep_seconds": 60, "max_keep_seconds": 600, "max_wait_seconds": 30}}
      }
    })");

    const auto p = parse({"--config", config.string()});
    ASSERT_TRUE(p.ok()) << p.err;
    const settings& s = p.value();
    EXPECT_EQ(s.config_file, config);
    EXPECT_EQ(s.listen, "0.0.0.0:9000");
    EXPECT_EQ(s.prefix, "ci_");
    EXPECT_EQ(s.log_level, "debug");
    EXPECT_EQ(s.embedded.data_dir, dir.path() / "etc/state");
    EXPECT_EQ(s.embedded.port, 6543);
    EXPECT_EQ(s.embedded.run_as, "nobody");
    EXPECT_EQ(s.embedded.bin_dir, "/opt/pg/bin");
    EXPECT_EQ(s.embedded.max_connections, 500);
    EXPECT_EQ(s.embedded_max_parallel_clones, 4);
    EXPECT_EQ(s.embedded_max_databases, 50);
    EXPECT_TRUE(s.embedded_per_lease_roles);

    ASSERT_EQ(s.backends.size(), 2U);
    EXPECT_EQ(s.backends[0].name, "main");
    EXPECT_EQ(s.backends[0].url, "postgresql://admin@db1/postgres");
    EXPECT_EQ(s.backends[0].max_parallel_clones, 3);
    EXPECT_EQ(s.backends[0].max_databases, 400);
    EXPECT_EQ(s.backends[0].lease_role, "worker");
    EXPECT_EQ(s.backends[0].lease_password, "s3cret");
    EXPECT_TRUE(s.backends[0].per_lease_roles);
    EXPECT_EQ(s.backends[1].name, "replica_2");
    EXPECT_EQ(s.backends[1].url, "host=db2 user=admin");
    EXPECT_EQ(s.backends[1].max_parallel_clones, 2);
    EXPECT_EQ(s.backends[1].max_databases, 200);
    EXPECT_EQ(s.backends[1].lease_role, "pglease_worker");
    EXPECT_FALSE(s.backends[1].per_lease_roles);

    EXPECT_EQ(s.default_pool.min_idle, 1);
    EXPECT_EQ(s.default_pool.max_total, 16);
    EXPECT_EQ(s.default_pool.strategy, "WAL_LOG");
    EXPECT_EQ(s.default_lease.ttl, seconds(120));
    EXPECT_EQ(s.default_lease.wait, seconds(10));

    ASSERT_EQ(s.templates.size(), 3U);
    const auto& app = s.templates.at("app");
    EXPECT_EQ(app.name, "app");
    EXPECT_EQ(app.kind, source_kind::migrations);
    EXPECT_EQ(app.migrations, dir.path() / "db/migrations");
    EXPECT_EQ(app.pool.min_idle, 4);
    EXPECT_EQ(app.pool.max_total, 32);
    EXPECT_EQ(app.pool.strategy, "FILE_COPY");
    EXPECT_EQ(app.lease.ttl, seconds(600));
    EXPECT_EQ(app.lease.max_ttl, seconds(7200));
    EXPECT_EQ(app.lease.wait, seconds(10)) << "unset keys come from defaults.lease";
    EXPECT_EQ(app.build_timeout, seconds(600));
    EXPECT_FALSE(app.fingerprint);

    const auto& legacy = s.templates.at("legacy");
    EXPECT_EQ(legacy.kind, source_kind::database);
    EXPECT_EQ(legacy.database, "legacy_schema");
    EXPECT_EQ(legacy.fingerprint, "v42");
    EXPECT_EQ(legacy.lease_role, "legacy_owner");
    EXPECT_EQ(legacy.lease_password, "pw");
    EXPECT_EQ(legacy.pool.min_idle, 1) << "unset keys come from defaults.pool";
    EXPECT_EQ(legacy.pool.strategy, "WAL_LOG");
    EXPECT_EQ(legacy.lease.ttl, seconds(120));

    const auto& web = s.templates.at("web");
    EXPECT_EQ(web.kind, source_kind::command);
    EXPECT_EQ(web.command, "alembic upgrade head");
    EXPECT_EQ(web.watch,
              (std::vector<fs::path>{dir.path() / "alembic.ini", dir.path() / "alembic"}));
    EXPECT_EQ(web.build_timeout, seconds(120));
    EXPECT_EQ(web.lease.keep, seconds(60));
    EXPECT_EQ(web.lease.max_keep, seconds(600));
    EXPECT_EQ(web.lease.max_wait, seconds(30));
    EXPECT_EQ(web.lease.ttl, seconds(120));
}

TEST(settings, each_source_overrides_the_one_before) {
    clean_environment env;
    temp_dir dir;
    const fs::path config = dir.write(
        "pglease.json", R"({"listen": "127.0.0.1:8001", "pg_port": 6001, "log_level": "warn"})");

    const auto from_default = parse({});
    ASSERT_TRUE(from_default.ok()) << from_default.err;
    EXPECT_EQ(from_default.value().listen, "127.0.0.1:7432");
    EXPECT_FALSE(from_default.value().embedded.port);
    EXPECT_EQ(from_default.value().log_level, "info");

    const auto from_file = parse({"--config", config.string()});
    ASSERT_TRUE(from_file.ok()) << from_file.err;
    EXPECT_EQ(from_file.value().listen, "127.0.0.1:8001");
    EXPECT_EQ(from_file.value().embedded.port, 6001);
    EXPECT_EQ(from_file.value().log_level, "warn");

    env.set("PGLEASE_CONFIG", config.string());
    env.set("PGLEASE_LISTEN", "127.0.0.1:8002");
    env.set("PGLEASE_PG_PORT", "6002");
    const auto from_env = parse({});
    ASSERT_TRUE(from_env.ok()) << from_env.err;
    EXPECT_EQ(from_env.value().config_file, config);
    EXPECT_EQ(from_env.value().listen, "127.0.0.1:8002");
    EXPECT_EQ(from_env.value().embedded.port, 6002);
    EXPECT_EQ(from_env.value().log_level, "warn") << "no variable given, so the file's value";

    const auto from_flag = parse({"--listen", "127.0.0.1:8003", "--pg-port", "6003"});
    ASSERT_TRUE(from_flag.ok()) << from_flag.err;
    EXPECT_EQ(from_flag.value().listen, "127.0.0.1:8003");
    EXPECT_EQ(from_flag.value().embedded.port, 6003);
    EXPECT_EQ(from_flag.value().log_level, "warn");

    env.set("PGLEASE_PG_PORT", "not a port");
    const auto overridden = parse({"--pg-port", "6004"});
    ASSERT_TRUE(overridden.ok()) << "a flag replaces its variable unread: " << overridden.err;
    EXPECT_EQ(overridden.value().embedded.port, 6004);
}

TEST(settings, per_lease_roles_of_the_embedded_cluster_come_from_a_variable_or_a_flag) {
    clean_environment env;
    env.set("PGLEASE_PER_LEASE_ROLES", "true");
    const auto from_env = parse({});
    ASSERT_TRUE(from_env.ok()) << from_env.err;
    EXPECT_TRUE(from_env.value().embedded_per_lease_roles);
    const auto from_flag = parse({"--per-lease-roles", "false"});
    ASSERT_TRUE(from_flag.ok()) << from_flag.err;
    EXPECT_FALSE(from_flag.value().embedded_per_lease_roles);
}

TEST(settings, listen_takes_a_host_name_or_a_bracketed_ipv6_address) {
    clean_environment env;
    for (const char* listen : {"[::1]:7432", "localhost:80", "0.0.0.0:65535"}) {
        const auto p = parse({"--listen", listen});
        ASSERT_TRUE(p.ok()) << listen << ": " << p.err;
        EXPECT_EQ(p.value().listen, listen);
    }
}

TEST(settings, relative_paths_resolve_against_the_file_or_the_working_directory) {
    clean_environment env;
    temp_dir dir;
    const fs::path config =
        dir.write("conf/pglease.json", R"({"data_dir": "data", "pg_bin_dir": "../bin"})");
    const fs::path cwd = fs::current_path();

    const auto in_file = parse({"--config", fs::relative(config, cwd).string()});
    ASSERT_TRUE(in_file.ok()) << in_file.err;
    EXPECT_EQ(in_file.value().config_file, config) << "--config itself is made absolute";
    EXPECT_EQ(in_file.value().embedded.data_dir, dir.path() / "conf/data");
    EXPECT_EQ(in_file.value().embedded.bin_dir, dir.path() / "bin");

    env.set("PGLEASE_PG_BIN_DIR", "pg/bin");
    const auto from_command_line = parse({"--data-dir", "state/pglease"});
    ASSERT_TRUE(from_command_line.ok()) << from_command_line.err;
    EXPECT_EQ(from_command_line.value().embedded.data_dir, cwd / "state/pglease");
    EXPECT_EQ(from_command_line.value().embedded.bin_dir, cwd / "pg/bin");
}

struct invalid_case {
    std::string config;  // written to pglease.json and passed with --config when not empty
    std::vector<std::string> args;
    std::map<std::string, std::string> variables;
    std::vector<std::string> expected;  // each must appear in the error output
};

invalid_case in_file(std::string config, std::vector<std::string> expected) {
    return {std::move(config), {}, {}, std::move(expected)};
}

invalid_case in_args(std::vector<std::string> args, std::vector<std::string> expected) {
    return {"", std::move(args), {}, std::move(expected)};
}

invalid_case in_variable(std::string name, std::string value, std::vector<std::string> expected) {
    return {"", {}, {{std::move(name), std::move(value)}}, std::move(expected)};
}

/// A config file whose template "app" (migrations in ./migrations) also has `extra`.
std::string with_app(const std::string& extra) {
    return R"({"templates": {"app": {"migrations": "migrations", )" + extra + "}}}";
}

TEST(settings, invalid_input_fails_with_the_key_path_and_the_problem) {
    const std::vector<invalid_case> cases{
        in_file(with_app(R"("pool": {"min_idel": 1})"),
                {"templates.app.pool.min_idel: unknown key; known keys: min_idle, max_total, "
                 "strategy"}),
        in_file(with_app(R"("pool": {"max_total": "8"})"),
                {R"(templates.app.pool.max_total: expected an integer, got "8")"}),
        in_file(R"({"pg_port": 70000})", {"pg_port: must be between 1 and 65535, got 70000"}),
        in_file("{\n  \"listen\": \"127.0.0.1:7432\",\n}", {"invalid JSON at line 3, column 1"}),
        in_file(with_app(R"("pool": {"min_idle": 1e999})"),
                {"templates.app.pool.min_idle: a number past what JSON's doubles hold"}),
        in_args({"--config", "/nonexistent/pglease.json"},
                {"/nonexistent/pglease.json: ", "does not exist"}),
        in_file(R"({"templates": {"app": {"pool": {}}}})",
                {"templates.app: needs exactly one of migrations, database, command; got none"}),
        in_file(with_app(R"("database": "appdb")"),
                {"templates.app: needs exactly one of migrations, database, command; got "
                 "migrations, database"}),
        in_file(with_app(R"("pool": {"min_idle": 5, "max_total": 2})"),
                {"templates.app.pool: min_idle (5) > max_total (2)"}),
        in_file(R"({"defaults": {"pool": {"max_total": 3}},
                    "templates": {"app": {"migrations": "migrations", "pool": {"min_idle": 5}}}})",
                {"templates.app.pool: min_idle (5) > max_total (3)"}),
        in_file(R"({"templates": {"App-1": {"migrations": "migrations"}}})",
                {R"(templates.App-1: template name "App-1" must match [a-z][a-z0-9_]{0,26})"}),
        in_file(R"({"templates": {"a_name_that_is_much_too_long_x": {"database": "d"}}})",
                {"templates.a_name_that_is_much_too_long_x: template name", "at most 27"}),
        in_file(with_app(R"("lease": {"ttl_seconds": 600, "max_ttl_seconds": 60})"),
                {"templates.app.lease: max_ttl_seconds (60) < ttl_seconds (600)"}),
        in_file(with_app(R"("pool": {"strategy": "fast"})"),
                {R"(templates.app.pool.strategy: expected one of FILE_COPY, WAL_LOG, got "fast")"}),
        in_file(R"({"backends": [{"url": "postgresql://a@h/postgres", "lease_password": "x"},
                                 {"url": "postgresql://b@h/postgres", "lease_password": "y"}]})",
                {R"(backends[1].name: duplicate backend name "main" (also backends[0]))"}),
        in_file(R"({"templates": {"app": {"migrations": "no/such/dir"}}})",
                {"templates.app.migrations: ", "no/such/dir\" does not exist"}),
        in_file(R"({"templates": {"app": {"migrations": "pglease.json"}}})",
                {"templates.app.migrations: ", "pglease.json\" is not a directory"}),
        in_file(R"({"templates": {"app": {"command": "make migrate"}}})",
                {"templates.app.watch: required with \"command\""}),
        in_file(R"({"templates": {"app": {"command": "make migrate", "watch": ["missing.txt"]}}})",
                {"templates.app.watch[0]: ", "missing.txt\" does not exist"}),
        in_file(R"({"templates": {"app": {"database": "d", "build_timeout_seconds": 1.5}}})",
                {"templates.app.build_timeout_seconds: expected an integer, got 1.5"}),
        in_file(R"({"tempaltes": {}})",
                {"tempaltes: unknown key; known keys: listen, prefix, token_file, log_level, "
                 "log_format, "
                 "data_dir, "
                 "pg_port, run_as, pg_bin_dir, max_connections, embedded, backends, defaults, "
                 "templates"}),
        in_file(R"({"backends": [{"name": "main"}]})", {"backends[0].url: required"}),
        in_file(R"({"backends": [{"name": "Main!", "url": "u", "lease_password": "p"}]})",
                {R"(backends[0].name: "Main!" must match [a-z][a-z0-9_]{0,30})"}),
        in_file(R"({"embedded": {"max_databases": 0}})",
                {"embedded.max_databases: must be between 1 and 100000, got 0"}),
        in_file(R"({"embedded": {"max_clones": 3}})",
                {"embedded.max_clones: unknown key; known keys: max_parallel_clones, "
                 "max_databases, per_lease_roles"}),
        in_file(R"({"embedded": {"per_lease_roles": "yes"}})",
                {R"(embedded.per_lease_roles: expected true or false, got "yes")"}),
        in_file(R"({"backends": [{"url": "u", "per_lease_roles": 1}]})",
                {"backends[0].per_lease_roles: expected true or false, got 1"}),
        in_variable("PGLEASE_PER_LEASE_ROLES", "on",
                    {R"(PGLEASE_PER_LEASE_ROLES: expected true or false, got "on")"}),
        in_file(R"({"defaults": {"lease": {"wait_seconds": 700}}})",
                {"defaults.lease: max_wait_seconds (600) < wait_seconds (700)"}),
        in_file(R"({"prefix": "Pg-"})", {R"(prefix: "Pg-" must match [a-z][a-z0-9_]{0,15})"}),
        in_file(R"({"listen": 7432})", {"listen: expected a string, got 7432"}),
        in_file("[1, 2]", {"the top level must be a JSON object, got [1,2]"}),
        in_variable("PGLEASE_PG_PORT", "abc",
                    {R"(PGLEASE_PG_PORT: expected an integer, got "abc")"}),
        in_variable("PGLEASE_MAX_CONNECTIONS", "5",
                    {"PGLEASE_MAX_CONNECTIONS: must be between 10 and 10000, got 5"}),
        in_args({"--log-level", "loud"},
                {R"(--log-level: expected one of trace, debug, info, warn, error, got "loud")"}),
        in_args({"--log-format", "xml"}, {R"(--log-format: expected text or json, got "xml")"}),
        in_args({"--listen", "localhost"}, {R"(--listen: expected host:port, got "localhost")"}),
        in_args({"--listen", "::1:7432"}, {"--listen: an IPv6 address needs brackets"}),
        in_args({"--listen", "127.0.0.1:70000"}, {"--listen: port must be between 0 and 65535"}),
        in_args({"--max-parallel-clones", "65"},
                {"--max-parallel-clones: must be between 1 and 64"}),
        in_args({"--no-such-flag"}, {"--no-such-flag"}),
    };
    for (const auto& c : cases) {
        clean_environment env;
        temp_dir dir;
        dir.make_dir("migrations");
        std::vector<std::string> args = c.args;
        if (!c.config.empty()) {
            args.emplace_back("--config");
            args.push_back(dir.write("pglease.json", c.config).string());
        }
        for (const auto& [name, value] : c.variables) {
            env.set(name, value);
        }
        const auto p = parse(args);
        const std::string what = c.config + " " + (args.empty() ? "" : args.front());
        ASSERT_FALSE(p.ok()) << "accepted: " << what;
        EXPECT_EQ(p.exit_code(), 2) << what;
        for (const auto& expected : c.expected) {
            EXPECT_TRUE(contains(p.err, expected))
                << "for " << what << "\nexpected: " << expected << "\ngot: " << p.err;
        }
    }
}

TEST(settings, every_problem_is_reported_one_per_line) {
    clean_environment env;
    temp_dir dir;
    const fs::path config = dir.write("pglease.json", R"({
      "pg_port": "5432",
      "templates": {
        "app": {"database": "app", "pool": {"min_idle": 9, "max_total": 3}},
        "web": {"database": "web", "lease": {"ttl": 5}}
      }
    })");
    const auto p = parse({"--config", config.string(), "--prefix", "9lives"});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.exit_code(), 2);
    for (const char* expected :
         {R"(pg_port: expected an integer, got "5432")", "templates.web.lease.ttl: unknown key",
          "templates.app.pool: min_idle (9) > max_total (3)", "--prefix: \"9lives\" must match"}) {
        EXPECT_TRUE(contains(p.err, expected)) << expected << " missing from:\n" << p.err;
    }
    EXPECT_EQ(std::count(p.err.begin(), p.err.end(), '\n'), 4) << p.err;
}

TEST(settings, the_token_comes_from_its_variable_or_the_first_line_of_a_file) {
    clean_environment env;
    EXPECT_TRUE(parse({}).value().token.empty());
    const fs::path file =
        fs::temp_directory_path() / ("pglease-token-" + std::to_string(::getpid()));
    std::ofstream(file) << "from-file\nignored second line\n";
    const auto from_file = parse({"--token-file", file.string()});
    ASSERT_TRUE(from_file.ok()) << from_file.err;
    EXPECT_EQ(from_file.value().token, "from-file");
    ::setenv("PGLEASE_TOKEN", "from-env", 1);
    const auto from_env = parse({"--token-file", file.string()});
    ::unsetenv("PGLEASE_TOKEN");
    EXPECT_EQ(from_env.value().token, "from-env");
    fs::remove(file);
    const auto missing = parse({"--token-file", file.string()});
    EXPECT_FALSE(missing.ok());
    EXPECT_TRUE(contains(missing.err, "--token-file: cannot read a token")) << missing.err;
}

// A CI service container is given variables, not files.
TEST(settings, the_environment_alone_configures_a_backend_or_the_whole_document) {
    clean_environment env;
    env.set("PGLEASE_BACKEND_URL", "postgresql://admin:pw@db:5432/postgres");
    const auto url_only = parse({});
    ASSERT_TRUE(url_only.ok()) << url_only.err;
    ASSERT_EQ(url_only.value().backends.size(), 1u);
    EXPECT_EQ(url_only.value().backends[0].name, "main");
    EXPECT_EQ(url_only.value().backends[0].url, "postgresql://admin:pw@db:5432/postgres");
    EXPECT_EQ(url_only.value().backends[0].lease_role, "pglease_worker");
    EXPECT_EQ(url_only.value().backends[0].lease_password, "") << "generated at start";
    env.set("PGLEASE_LEASE_ROLE", "ci_worker");
    env.set("PGLEASE_LEASE_PASSWORD", "shared-by-the-pair");
    const auto with_role = parse({});
    ASSERT_TRUE(with_role.ok()) << with_role.err;
    EXPECT_EQ(with_role.value().backends[0].lease_role, "ci_worker");
    EXPECT_EQ(with_role.value().backends[0].lease_password, "shared-by-the-pair");
    ::unsetenv("PGLEASE_BACKEND_URL");
    const auto orphan = parse({});
    ASSERT_FALSE(orphan.ok());
    EXPECT_TRUE(contains(orphan.err, "go with PGLEASE_BACKEND_URL")) << orphan.err;
    ::unsetenv("PGLEASE_LEASE_ROLE");
    ::unsetenv("PGLEASE_LEASE_PASSWORD");

    temp_dir dir;
    dir.make_dir("migrations");
    env.set("PGLEASE_CONFIG_JSON",
            R"({"listen": "127.0.0.1:7500", "templates": {"app": {"migrations": "migrations"}},
                "backends": [{"url": "host=db user=admin"}]})");
    const fs::path before = fs::current_path();
    fs::current_path(dir.path());
    const auto inline_json = parse({});
    fs::current_path(before);
    ASSERT_TRUE(inline_json.ok()) << inline_json.err;
    EXPECT_EQ(inline_json.value().listen, "127.0.0.1:7500");
    ASSERT_EQ(inline_json.value().templates.count("app"), 1u);
    EXPECT_EQ(fs::weakly_canonical(inline_json.value().templates.at("app").migrations),
              fs::weakly_canonical(dir.path() / "migrations"));
    EXPECT_EQ(inline_json.value().backends.at(0).lease_password, "");

    env.set("PGLEASE_CONFIG_JSON", R"({"listen": )");
    const auto broken = parse({});
    ASSERT_FALSE(broken.ok());
    EXPECT_TRUE(contains(broken.err, "pgleased: PGLEASE_CONFIG_JSON: invalid JSON")) << broken.err;

    env.set("PGLEASE_CONFIG_JSON", "{}");
    const fs::path file = dir.write("pglease.json", "{}");
    const auto both = parse({"--config", file.string()});
    ASSERT_FALSE(both.ok());
    EXPECT_TRUE(contains(both.err, "give one of them")) << both.err;
}

TEST(settings, help_documents_every_flag_its_variable_and_the_precedence) {
    clean_environment env;
    const auto p = parse({"--help"});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.exit_code(), 0);
    for (const char* flag : {"--config", "--listen", "--prefix", "--log-level", "--data-dir",
                             "--pg-port", "--run-as", "--pg-bin-dir", "--max-connections",
                             "--max-parallel-clones", "--max-databases", "--version", "--help"}) {
        EXPECT_TRUE(contains(p.out, flag)) << "help does not mention " << flag;
    }
    for (const char* variable : all_variables) {
        // The variables without a flag of their own are explained in the footer.
        const bool flagless = std::string_view(variable) == "PGLEASE_CONFIG_JSON" ||
                              std::string_view(variable) == "PGLEASE_BACKEND_URL" ||
                              std::string_view(variable) == "PGLEASE_LEASE_ROLE" ||
                              std::string_view(variable) == "PGLEASE_LEASE_PASSWORD";
        EXPECT_TRUE(
            contains(p.out, flagless ? std::string(variable) : std::string("Env: ") + variable))
            << "help does not mention " << variable;
    }
    const char* precedence =
        "in increasing precedence: its built-in default, the JSON file given with --config, its "
        "PGLEASE_* environment variable, its command-line flag";
    for (const char* text : {"embedded cluster", "/dev/shm", "Default: 127.0.0.1:7432",
                             "Default: a free port", "Default: 300", precedence, "\"templates\""}) {
        EXPECT_TRUE(contains(p.out, text)) << "help does not mention " << text << ":\n" << p.out;
    }
}

TEST(settings, version_is_printed) {
    clean_environment env;
    const auto p = parse({"--version"});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.exit_code(), 0);
    EXPECT_TRUE(contains(p.out, "pgleased ")) << p.out;
}

TEST(settings, template_names_keep_database_names_within_63_bytes) {
    for (const char* good : {"a", "app", "app_2", "a23456789012345678901234567"}) {
        EXPECT_FALSE(template_name_problem(good)) << good;
    }
    for (const char* bad :
         {"", "App", "2app", "_app", "app-web", "app web", "ä", "a234567890123456789012345678"}) {
        const auto problem = template_name_problem(bad);
        ASSERT_TRUE(problem) << bad;
        EXPECT_TRUE(contains(*problem, "template name")) << *problem;
    }
}

TEST(settings, validate_reports_cross_field_problems_by_key_path) {
    settings s;
    EXPECT_TRUE(validate(s).empty());

    template_settings t;
    t.name = "app";
    t.kind = source_kind::command;
    t.command = "make migrate";
    t.watch = {"/src/migrations"};
    s.templates.emplace("app", t);
    s.backends.push_back({.name = "main", .url = "host=db", .lease_password = "p"});
    EXPECT_TRUE(validate(s).empty());

    s.templates.at("app").kind = source_kind::database;
    s.templates.at("app").lease.keep = seconds(100000);
    s.default_pool.min_idle = 20;
    s.backends.push_back(s.backends.front());
    const auto problems = validate(s);
    const std::vector<std::string> expected{
        "defaults.pool: min_idle (20) > max_total (16)",
        "templates.app: command is set but the template's kind says otherwise",
        "templates.app.lease: max_keep_seconds (86400) < keep_seconds (100000)",
        "backends[1].name: duplicate backend name \"main\" (also backends[0])"};
    EXPECT_EQ(problems, expected);
}

}  // namespace
}  // namespace pglease
