// pglease: lease databases from pgleased in shell scripts, Makefiles and CI steps.
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "exit_codes.hpp"
#include "pglease/client.hpp"
#include "run_command.hpp"

namespace {

using namespace pglease;
using std::chrono::seconds;

// A CLI11 validator for durations: 90s, 10m, 1h, 1h30m or plain seconds.
struct duration_validator : CLI::Validator {
    duration_validator() {
        name_ = "DURATION";
        func_ = [](const std::string& text) {
            return client::parse_duration(text)
                       ? std::string()
                       : "\"" + text + "\" is not a duration (like 90s, 10m, 1h or 1h30m)";
        };
    }
};

std::optional<seconds> duration_of(const std::string& text) {
    return text.empty() ? std::nullopt : client::parse_duration(text);
}

std::string shell_quoted(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t whole = std::chrono::system_clock::to_time_t(t);
    std::tm utc{};
    gmtime_r(&whole, &utc);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

void print_lease(const client::lease_data& lease, const std::string& format) {
    if (format == "url") {
        std::cout << lease.dsn << "\n";
    } else if (format == "json") {
        nlohmann::json out{{"id", lease.id},
                           {"template", lease.template_name},
                           {"fingerprint", lease.fingerprint},
                           {"database", lease.database},
                           {"dsn", lease.dsn},
                           {"host", lease.host},
                           {"port", lease.port},
                           {"user", lease.user},
                           {"password", lease.password},
                           {"backend", lease.backend},
                           {"expires_at", iso_time(lease.expires_at)}};
        std::cout << out.dump() << "\n";
    } else {
        std::cout << "export DATABASE_URL=" << shell_quoted(lease.dsn)
                  << " PGHOST=" << shell_quoted(lease.host)
                  << " PGPORT=" << shell_quoted(std::to_string(lease.port))
                  << " PGUSER=" << shell_quoted(lease.user)
                  << " PGPASSWORD=" << shell_quoted(lease.password)
                  << " PGDATABASE=" << shell_quoted(lease.database)
                  << " PGLEASE_ID=" << shell_quoted(lease.id) << "\n";
    }
}

client::release_mode mode_of(const std::string& name) {
    return name == "reuse"  ? client::release_mode::reuse
           : name == "keep" ? client::release_mode::keep
                            : client::release_mode::recycle;
}

void print_status(const std::vector<client::template_data>& templates) {
    std::printf("%-28s %-9s %5s %6s %8s %9s %5s %7s %8s %9s %-7s\n", "TEMPLATE", "STATE", "IDLE",
                "LEASED", "CREATING", "RESETTING", "KEPT", "WAITERS", "MIN_IDLE", "MAX_TOTAL",
                "RECYCLE");
    for (const auto& t : templates) {
        std::printf("%-28s %-9s %5d %6d %8d %9d %5d %7d %8d %9d %-7s\n", t.name.c_str(),
                    t.state.c_str(), t.idle, t.leased, t.creating, t.resetting, t.kept, t.waiters,
                    t.min_idle, t.max_total, t.recycle.empty() ? "-" : t.recycle.c_str());
    }
}

const char* exit_code_help =
    "Exit codes: 0 ok, 2 usage error, 3 pgleased unreachable, 4 not available now (pool "
    "exhausted, template building or failed, backend down, a reset refused while a session is "
    "busy: retry), 5 other server error, "
    "6 unauthorized (token missing or wrong), 7 unknown template or lease. `pglease run` exits "
    "with the command's status (128+N when signal N ended it).";

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pglease: isolated PostgreSQL databases from pgleased for tests, in one line.",
                 "pglease"};
    app.footer(exit_code_help);
    app.require_subcommand(1);
    // --url and --token may come after the subcommand too.
    app.fallthrough();
    std::string url;
    std::string token;
    app.add_option("--url", url,
                   "pgleased base URL (default $PGLEASE_URL, else http://127.0.0.1:7432)")
        ->envname("PGLEASE_URL");
    app.add_option("--token", token, "API token (default $PGLEASE_TOKEN)")
        ->envname("PGLEASE_TOKEN");
    const duration_validator duration;

    std::string template_name;
    std::string ttl;
    std::string wait;
    std::string owner;
    std::string fingerprint;
    std::vector<std::string> labels;
    std::string format = "env";
    auto* lease_cmd = app.add_subcommand("lease", "Lease a database and print how to reach it");
    lease_cmd->add_option("-t,--template", template_name, "Template to clone")->required();
    lease_cmd->add_option("--ttl", ttl, "Lease time (default: the template's)")->check(duration);
    lease_cmd->add_option("--wait", wait, "How long to wait for a clone (default: the template's)")
        ->check(duration);
    lease_cmd->add_option("--owner", owner, "Who holds it (shown in GET /v1/leases)");
    lease_cmd->add_option("--label", labels, "A label KEY=VALUE (repeatable)");
    lease_cmd->add_option("--fingerprint", fingerprint,
                          "Exactly this version of the template (default: its newest)");
    lease_cmd
        ->add_option("--format", format,
                     "env: an export line for eval; json: the lease; url: the DSN")
        ->check(CLI::IsMember({"env", "json", "url"}));

    std::string lease_id;
    std::string mode = "recycle";
    std::string keep;
    auto* release_cmd = app.add_subcommand("release", "Give a leased database back");
    release_cmd->add_option("ID", lease_id, "Lease id")->required();
    release_cmd
        ->add_option("--mode", mode,
                     "recycle: back to the template's state (reset in place, or dropped and "
                     "replaced); reuse: hand out again as it is (nothing was written); keep: "
                     "keep it for inspection")
        ->check(CLI::IsMember({"recycle", "reuse", "keep"}));
    release_cmd->add_option("--keep", keep, "With --mode keep: for how long")->check(duration);

    auto* renew_cmd = app.add_subcommand("renew", "Extend a lease");
    renew_cmd->add_option("ID", lease_id, "Lease id")->required();
    renew_cmd->add_option("--ttl", ttl, "New lease time from now (default: the template's)")
        ->check(duration);

    auto* reset_cmd = app.add_subcommand(
        "reset", "Make a leased database fresh again and keep the lease (same database and DSN)");
    reset_cmd->add_option("ID", lease_id, "Lease id")->required();
    reset_cmd->footer(
        "Prints \"reset\" (in place: sessions idle outside a transaction stay connected) or "
        "\"reclone\" and why (cloned again under its name: its sessions were ended). Refused "
        "(exit 4) while one of its sessions is in a transaction or running a query.");

    auto* status_cmd = app.add_subcommand("status", "Templates and their pools, as a table");
    auto* templates_cmd = app.add_subcommand("templates", "Template names, states, fingerprints");

    std::string on_success = "recycle";
    std::string keep_on_failure;
    std::vector<std::string> command;
    auto* run_cmd = app.add_subcommand(
        "run", "Lease a database, run a command with DATABASE_URL and PG* set, release it after");
    run_cmd->add_option("-t,--template", template_name, "Template to clone")->required();
    run_cmd->add_option("--ttl", ttl, "Lease time, renewed while the command runs")
        ->check(duration);
    run_cmd->add_option("--wait", wait, "How long to wait for a clone")->check(duration);
    run_cmd->add_option("--owner", owner, "Who holds it (default: the command)");
    run_cmd->add_option("--fingerprint", fingerprint,
                        "Exactly this version of the template (default: its newest)");
    run_cmd
        ->add_option("--mode-on-success", on_success,
                     "Release mode when the command exits 0 (reuse: it wrote nothing)")
        ->check(CLI::IsMember({"recycle", "reuse"}));
    run_cmd
        ->add_option("--keep-on-failure", keep_on_failure,
                     "When the command fails, keep its database this long and say where")
        ->check(duration);
    run_cmd->add_option("command", command, "-- CMD ARGS...")->required();
    run_cmd->footer("Example: pglease run -t app -- pytest -x tests/");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "pglease: " << e.what() << " (see pglease --help)" << std::endl;
        return cli::usage;
    }

    client::lease_options options;
    options.ttl = duration_of(ttl);
    options.wait = duration_of(wait);
    options.owner = owner;
    options.fingerprint = fingerprint;
    for (const auto& label : labels) {
        const auto equals = label.find('=');
        if (equals == std::string::npos || equals == 0) {
            std::cerr << "pglease: --label wants KEY=VALUE, got \"" << label << "\"" << std::endl;
            return cli::usage;
        }
        options.labels[label.substr(0, equals)] = label.substr(equals + 1);
    }

    try {
        client::client server(url, token);
        if (lease_cmd->parsed()) {
            print_lease(server.acquire(template_name, options), format);
        } else if (release_cmd->parsed()) {
            if (!keep.empty() && mode != "keep") {
                std::cerr << "pglease: --keep goes with --mode keep" << std::endl;
                return cli::usage;
            }
            server.release(lease_id, mode_of(mode), duration_of(keep));
        } else if (renew_cmd->parsed()) {
            const auto renewed = server.renew(lease_id, duration_of(ttl));
            std::cout << iso_time(renewed.expires_at) << "\n";
        } else if (reset_cmd->parsed()) {
            const auto reset = server.reset(lease_id);
            std::cout << reset.result << (reset.reason.empty() ? "" : "\t" + reset.reason) << "\n";
        } else if (status_cmd->parsed()) {
            print_status(server.templates());
        } else if (templates_cmd->parsed()) {
            for (const auto& t : server.templates()) {
                std::printf("%s\t%s\t%s\n", t.name.c_str(), t.state.c_str(),
                            t.fingerprint.empty() ? "-" : t.fingerprint.substr(0, 12).c_str());
            }
        } else if (run_cmd->parsed()) {
            cli::run_options run;
            run.template_name = template_name;
            run.lease = options;
            if (run.lease.owner.empty()) {
                run.lease.owner = command.front();
            }
            run.on_success = mode_of(on_success);
            run.keep_on_failure = duration_of(keep_on_failure);
            run.command = command;
            return cli::run_command(server, run);
        }
    } catch (const client::error& e) {
        std::cerr << "pglease: " << e.what() << std::endl;
        return cli::exit_code_of(e);
    }
    return cli::ok;
}
