#include "config/settings.hpp"

#include <cstdlib>
#include <filesystem>
#include <map>

#include <CLI/CLI.hpp>

#include "config/config_file.hpp"
#include "config/setting_table.hpp"

namespace pglease {
namespace {

namespace fs = std::filesystem;

// A variable's value; unset and empty are the same (compose files export empty ones freely).
std::string env_value(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? std::string(value) : std::string();
}

/// Exit code for a wrong command line, environment or config file.
constexpr int usage_error = 2;
/// A clone is named prefix + template + "_" + a counter, and must fit PostgreSQL's 63 bytes.
constexpr std::size_t max_template_name = 27;
constexpr std::size_t max_backend_name = 31;

constexpr const char* description =
    "pgleased keeps warm pools of pre-migrated PostgreSQL databases and leases them to test "
    "workers.\n\nWith no backend configured it starts a private PostgreSQL cluster of its own (the "
    "embedded cluster), on RAM-backed storage when there is room.\n\nEach setting is taken from, "
    "in increasing precedence: its built-in default, the JSON file given with --config, its "
    "PGLEASE_* environment variable, its command-line flag. Relative paths in the file resolve "
    "against the file's directory, others against the working directory.";

constexpr const char* footer =
    "Only the config file holds \"backends\" (PostgreSQL servers to use instead of the embedded "
    "cluster), \"templates\" (the databases to pool, by name) and \"defaults\" (the \"pool\" and "
    "\"lease\" keys of templates that do not set them, and of client-initialized templates).\n\n"
    "Without files: PGLEASE_CONFIG_JSON holds the whole config document instead of a file "
    "(relative "
    "paths resolve against the working directory); PGLEASE_BACKEND_URL names one backend (an admin "
    "role with CREATEDB and CREATEROLE) that replaces the config's, with PGLEASE_LEASE_ROLE "
    "(default pglease_worker) and PGLEASE_LEASE_PASSWORD. A backend without a lease_password gets "
    "one generated and kept in the data directory (lease-role-<backend>.password), set on the "
    "role at each start; PGLEASE_TOKEN is the API token.";

std::string help_of(const setting& s, const settings& defaults) {
    std::string text(s.help);
    const std::string default_value =
        s.automatic_default.empty() ? s.show(defaults) : std::string(s.automatic_default);
    if (!default_value.empty()) {
        text += ". Default: " + default_value;
    }
    text.append(". Env: ").append(s.env);
    if (!s.key.empty()) {
        text.append(". File: \"").append(s.key).append("\"");
    }
    return text;
}

void check_pool(const pool_settings& pool, const std::string& path,
                std::vector<std::string>& problems) {
    if (pool.min_idle > pool.max_total) {
        problems.push_back(path + ": min_idle (" + std::to_string(pool.min_idle) +
                           ") > max_total (" + std::to_string(pool.max_total) + ")");
    }
}

void check_lease(const lease_settings& lease, const std::string& path,
                 std::vector<std::string>& problems) {
    const auto check_cap = [&](const char* key, std::chrono::seconds value, const char* cap_key,
                               std::chrono::seconds cap) {
        if (cap < value) {
            problems.push_back(path + ": " + cap_key + " (" + std::to_string(cap.count()) + ") < " +
                               key + " (" + std::to_string(value.count()) + ")");
        }
    };
    check_cap("ttl_seconds", lease.ttl, "max_ttl_seconds", lease.max_ttl);
    check_cap("keep_seconds", lease.keep, "max_keep_seconds", lease.max_keep);
    check_cap("wait_seconds", lease.wait, "max_wait_seconds", lease.max_wait);
}

void check_source(const template_settings& t, const std::string& path,
                  std::vector<std::string>& problems) {
    std::vector<std::pair<source_kind, std::string_view>> given;
    if (!t.migrations.empty()) {
        given.emplace_back(source_kind::migrations, "migrations");
    }
    if (!t.database.empty()) {
        given.emplace_back(source_kind::database, "database");
    }
    if (!t.command.empty()) {
        given.emplace_back(source_kind::command, "command");
    }
    if (given.size() != 1) {
        std::string names;
        for (const auto& [kind, name] : given) {
            names.append(names.empty() ? "" : ", ").append(name);
        }
        problems.push_back(path + ": needs exactly one of migrations, database, command; got " +
                           (given.empty() ? std::string("none") : names));
    } else if (given.front().first != t.kind) {
        problems.push_back(path + ": " + std::string(given.front().second) +
                           " is set but the template's kind says otherwise");
    }
    if (!t.command.empty() && t.watch.empty()) {
        problems.push_back(path +
                           ".watch: required with \"command\": the files and directories whose "
                           "contents decide when the template must be rebuilt");
    }
    if (t.command.empty() && !t.watch.empty()) {
        problems.push_back(path + ".watch: only a \"command\" template uses it");
    }
}

void check_backends(const std::vector<backend_settings>& backends,
                    std::vector<std::string>& problems) {
    std::map<std::string, std::size_t> index_of_name;
    for (std::size_t i = 0; i < backends.size(); ++i) {
        const auto& b = backends[i];
        const std::string path = "backends[" + std::to_string(i) + "]";
        if (auto p = identifier_problem(b.name, max_backend_name)) {
            problems.push_back(path + ".name: " + *p);
        } else if (const auto [it, added] = index_of_name.emplace(b.name, i); !added) {
            problems.push_back(path + ".name: duplicate backend name " + json_quoted(b.name) +
                               " (also backends[" + std::to_string(it->second) + "])");
        }
        if (b.url.empty()) {
            problems.push_back(path +
                               ".url: required: the libpq URI or conninfo of a role with "
                               "CREATEDB");
        }
        if (b.lease_role.empty()) {
            problems.push_back(path + ".lease_role: required: the role workers connect as");
        }
    }
}

}  // namespace

std::variant<settings, int> parse_settings(const std::vector<std::string>& args, std::ostream& out,
                                           std::ostream& err) {
    const auto table = setting_table();
    const settings defaults;
    CLI::App app{description, "pgleased"};
    app.get_formatter()->column_width(34);
    app.set_version_flag("--version", std::string("pgleased ") + PGLEASE_VERSION);
    app.footer(footer);
    std::vector<std::string> flag_values(table.size());
    std::vector<const CLI::Option*> flags;
    for (std::size_t i = 0; i < table.size(); ++i) {
        flags.push_back(
            app.add_option(std::string(table[i].flag), flag_values[i], help_of(table[i], defaults))
                ->type_name(std::string(table[i].value_name))
                ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast));
    }

    std::vector<const char*> argv;
    argv.reserve(args.size());
    for (const auto& arg : args) {
        argv.push_back(arg.c_str());
    }
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        return app.exit(e, out, err) == 0 ? 0 : usage_error;
    }

    settings s;
    std::vector<std::string> problems;
    const fs::path working_dir = fs::current_path();
    // The flag replaces the variable outright, so a bad variable it overrides is not reported.
    const auto apply_overrides = [&](bool settable_in_file) {
        for (std::size_t i = 0; i < table.size(); ++i) {
            const setting& known = table[i];
            if (known.key.empty() == settable_in_file) {
                continue;
            }
            if (flags[i]->count() > 0) {
                if (auto p = known.apply(s, flag_values[i], working_dir)) {
                    problems.push_back(std::string(known.flag) + ": " + *p);
                }
                continue;
            }
            // An empty variable counts as unset: compose files and shells export those freely.
            const char* env = std::getenv(std::string(known.env).c_str());
            if (env != nullptr && *env != '\0') {
                if (auto p = known.apply(s, env, working_dir)) {
                    problems.push_back(std::string(known.env) + ": " + *p);
                }
            }
        }
    };
    apply_overrides(false);
    const std::string inline_config = env_value("PGLEASE_CONFIG_JSON");
    if (s.config_file && !inline_config.empty()) {
        problems.push_back(
            "PGLEASE_CONFIG_JSON: a config file is given too (--config or PGLEASE_CONFIG): "
            "give one of them");
    } else if (s.config_file) {
        for (auto& p : read_config_file(*s.config_file, s)) {
            problems.push_back(std::move(p));
        }
    } else if (!inline_config.empty()) {
        for (auto& p : read_config_text(inline_config, "PGLEASE_CONFIG_JSON", working_dir, s)) {
            problems.push_back(std::move(p));
        }
    }
    // One backend from the environment alone (a CI service container gets no files): it
    // replaces any in the config.
    if (const std::string url = env_value("PGLEASE_BACKEND_URL"); !url.empty()) {
        backend_settings backend;
        backend.url = url;
        if (const std::string role = env_value("PGLEASE_LEASE_ROLE"); !role.empty()) {
            backend.lease_role = role;
        }
        backend.lease_password = env_value("PGLEASE_LEASE_PASSWORD");
        s.backends = {backend};
    } else if (!env_value("PGLEASE_LEASE_ROLE").empty() ||
               !env_value("PGLEASE_LEASE_PASSWORD").empty()) {
        problems.push_back(
            "PGLEASE_LEASE_ROLE and PGLEASE_LEASE_PASSWORD go with PGLEASE_BACKEND_URL");
    }
    apply_overrides(true);
    // The token itself only ever comes from the environment: a flag would show it in ps.
    if (const char* token = std::getenv("PGLEASE_TOKEN"); token != nullptr && *token != '\0') {
        s.token = token;
    }
    for (auto& p : validate(s)) {
        problems.push_back(std::move(p));
    }
    if (!problems.empty()) {
        for (const auto& p : problems) {
            err << "pgleased: " << p << '\n';
        }
        return usage_error;
    }
    return s;
}

std::optional<std::string> template_name_problem(std::string_view name) {
    if (auto p = identifier_problem(name, max_template_name)) {
        return "template name " + *p;
    }
    return std::nullopt;
}

std::vector<std::string> validate(const settings& s) {
    std::vector<std::string> problems;
    check_pool(s.default_pool, "defaults.pool", problems);
    check_lease(s.default_lease, "defaults.lease", problems);
    for (const auto& [name, t] : s.templates) {
        const std::string path = "templates." + name;
        if (auto p = template_name_problem(name)) {
            problems.push_back(path + ": " + *p);
        }
        check_source(t, path, problems);
        check_pool(t.pool, path + ".pool", problems);
        check_lease(t.lease, path + ".lease", problems);
    }
    check_backends(s.backends, problems);
    return problems;
}

}  // namespace pglease
