#include "bench/suites.hpp"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "embedded/server_binaries.hpp"
#include "embedded/tcp_port.hpp"
#include "process/child_process.hpp"
#include "process/os_user.hpp"
#include "support/http_client.hpp"
#include "support/run_async.hpp"

namespace pglease::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* worker_role = "bench_worker";
constexpr const char* worker_password = "bench";
constexpr const char* suite_template = "suite";

void make_owned_dir(const fs::path& dir, const std::optional<os_user>& user) {
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all);
    give_to_user(dir, user);
}

child_options options_for(const std::optional<os_user>& user) {
    child_options options;
    options.run_as = user;
    options.parent_death_signal = SIGINT;  // a benchmark killed leaves no server behind
    return options;
}

std::string read_tail(const fs::path& file) {
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

}  // namespace

// ---- durable_server ----

struct durable_server::state {
    boost::asio::io_context io;
    server_binaries binaries;
    std::optional<os_user> run_as;
    fs::path pgdata;
    fs::path socket_dir;
    fs::path log;
    std::uint16_t port = 0;

    std::optional<server_process> server;

    command_result run(const fs::path& program, std::vector<std::string> args) {
        return test::run_async(
            io, [&] { return run_command(program, args, options_for(run_as), 180s); }, 200s);
    }
};

durable_server::durable_server(const fs::path& data_dir, const template_spec& spec)
    : state_(std::make_unique<state>()), spec_(spec) {
    auto& s = *state_;
    s.binaries = test::run_async(s.io, [] { return find_server_binaries(std::nullopt); });
    if (running_as_root()) {
        s.run_as = find_os_user("postgres");
        if (!s.run_as) {
            throw std::runtime_error("running as root needs a postgres user for the server");
        }
    }
    make_owned_dir(data_dir, s.run_as);
    s.pgdata = data_dir / "pgdata";
    s.socket_dir = data_dir / "socket";
    s.log = data_dir / "server.log";
    make_owned_dir(s.socket_dir, s.run_as);
    { std::ofstream(s.log).flush(); }
    give_to_user(s.log, s.run_as);
    // As the image's entrypoint runs it: password logins over TCP, trust on the local socket.
    const auto made = s.run(s.binaries.initdb(), {"-D", s.pgdata.string(), "-U", "postgres",
                                                  "--auth-local=trust", "--auth-host=scram-sha-256",
                                                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"});
    if (made.exit_code != 0) {
        throw std::runtime_error("initdb failed: " + made.output);
    }
    s.port = pick_free_port();
    s.server.emplace(s.io.get_executor(), s.binaries.postgres(),
                     std::vector<std::string>{"-D", s.pgdata.string(), "-p", std::to_string(s.port),
                                              "-c", "listen_addresses=127.0.0.1", "-c",
                                              "unix_socket_directories=" + s.socket_dir.string()},
                     s.log, options_for(s.run_as));
    for (const auto until = clock::now() + 120s;; std::this_thread::sleep_for(50ms)) {
        pg_connection probe(PQconnectdb(admin_conninfo("postgres").c_str()), &PQfinish);
        if (probe && PQstatus(probe.get()) == CONNECTION_OK) {
            break;
        }
        if (!s.server->running() || clock::now() > until) {
            throw std::runtime_error("the durable server did not start:\n" + read_tail(s.log));
        }
    }
    auto admin = connect(admin_conninfo("postgres"));
    // password_encryption's default: scram-sha-256 with 4096 iterations.
    exec(admin.get(), std::string("CREATE ROLE ") + worker_role + " LOGIN CREATEDB PASSWORD '" +
                          worker_password + "'");
}

durable_server::~durable_server() {
    auto& s = *state_;
    if (!s.server) {
        return;
    }
    s.server->send_signal(SIGINT);  // fast shutdown
    try {
        const auto status = test::run_async(
            s.io, [&] { return s.server->wait_exit(120s); }, 130s);
        if (!status) {
            std::fprintf(stderr, "pglease-bench: the durable server did not stop in time\n");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pglease-bench: stopping the durable server: %s\n", e.what());
    }
}

std::string durable_server::admin_conninfo(const std::string& database) const {
    return "host=" + state_->socket_dir.string() + " port=" + std::to_string(state_->port) +
           " user=postgres dbname=" + database;
}

std::string durable_server::worker_conninfo(const std::string& database) const {
    return "host=127.0.0.1 port=" + std::to_string(state_->port) + " user=" + worker_role +
           " password=" + worker_password + " dbname=" + database;
}

std::string durable_server::clone_statement(const std::string& name) const {
    // As suites write it: PostgreSQL 15's default strategy (WAL_LOG).
    return "CREATE DATABASE " + name + " TEMPLATE " + template_database;
}

void durable_server::build_databases(const std::string& kind) const {
    auto owner = connect(worker_conninfo("postgres"));
    if (kind == "schema") {
        exec(owner.get(), std::string("CREATE DATABASE ") + shared_database);
        return;
    }
    exec(owner.get(), std::string("CREATE DATABASE ") + template_database);
    auto in_template = connect(worker_conninfo(template_database));
    for (const auto& [name, sql] : spec_.migrations) {
        exec(in_template.get(), sql);
    }
}

// ---- suites ----

const std::vector<std::pair<std::string, std::string>>& suite_kinds() {
    static const std::vector<std::pair<std::string, std::string>> kinds{
        {"clone", "durable clone per test"},  {"schema", "durable schema per test"},
        {"reset", "pglease recycle (reset)"}, {"reclone", "pglease recycle (reclone)"},
        {"sticky", "pglease sticky reset"},
    };
    return kinds;
}

namespace {

std::string label_of(const std::string& kind) {
    for (const auto& [id, label] : suite_kinds()) {
        if (id == kind) {
            return label;
        }
    }
    throw std::invalid_argument("no suite kind " + kind);
}

/// Times `setup`, then the tests over the workers `make` gives; the clock runs throughout.
suite_result timed_suite(const suite_spec& spec, const std::function<void()>& setup,
                         const std::function<std::unique_ptr<worker>(int)>& make) {
    suite_result result{spec, label_of(spec.kind), 0, 0, {}};
    const auto start = clock::now();
    setup();
    const auto built = clock::now();
    result.tests = run_workers(spec.workers, {3600s, static_cast<std::size_t>(spec.tests)}, make);
    const auto end = clock::now();
    result.seconds = std::chrono::duration<double>(end - start).count();
    result.setup_seconds = std::chrono::duration<double>(built - start).count();
    if (result.tests.iterations < static_cast<std::size_t>(spec.tests)) {
        result.tests.errors.push_back("the suite ran " + std::to_string(result.tests.iterations) +
                                      " of its " + std::to_string(spec.tests) + " tests");
    }
    return result;
}

/// What the Python, JavaScript, Rust and Go clients do before a suite's first test: PUT the
/// template with the migrations' fingerprint, run them on the build's database, finalize.
void build_client_template(std::uint16_t port, const template_spec& spec) {
    std::string text;
    for (const auto& [name, sql] : spec.migrations) {
        text += name + '\n' + sql;
    }
    const std::string fingerprint = "bench-" + std::to_string(std::hash<std::string>{}(text));
    test::http_client http("127.0.0.1", port);
    const std::string target = std::string("/v1/templates/") + suite_template;
    const auto put = http.put(target, {{"fingerprint", fingerprint}, {"wait_seconds", 60}});
    if (put.status != 201) {
        throw std::runtime_error("PUT " + target + " answered " + std::to_string(put.status) +
                                 ": " + put.body);
    }
    const auto build = put.json().at("build");
    {
        auto conn = connect(build.at("dsn").get<std::string>());
        for (const auto& [name, sql] : spec.migrations) {
            exec(conn.get(), sql);
        }
    }
    const auto done =
        http.post(target + "/builds/" + fingerprint + "/finalize", {{"build_id", build.at("id")}});
    if (done.status != 200) {
        throw std::runtime_error("finalize answered " + std::to_string(done.status) + ": " +
                                 done.body);
    }
}

}  // namespace

suite_result run_durable_suite(const durable_server& server, const suite_spec& spec) {
    return timed_suite(
        spec, [&] { server.build_databases(spec.kind); },
        [&](int index) {
            return spec.kind == "clone" ? clone_per_test_worker(server, index, spec.work)
                                        : schema_per_test_worker(server, index, spec.work);
        });
}

suite_result run_pglease_suite(const suite_context& context, const suite_spec& spec) {
    const fs::path dir =
        context.ram_dir / ("suite-" + spec.kind + "-w" + std::to_string(spec.workers) + "-" +
                           std::to_string(spec.work.count()) + "ms");
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    // Sized for W workers, as a suite's configuration would be; everything else as it comes.
    const json config = {{"defaults",
                          {{"pool",
                            {{"min_idle", spec.workers},
                             {"max_total", 2 * spec.workers + 8},
                             {"recycle", spec.kind == "reclone" ? "reclone" : "reset"}}},
                           {"lease", {{"ttl_seconds", 600}, {"wait_seconds", 120}}}}}};
    std::ofstream(dir / "pglease.json") << config.dump(2) << "\n";
    std::optional<suite_result> result;
    {
        pglease_daemon daemon(
            {context.pgleased, dir / "pglease.json", dir / "cluster", dir / "pgleased.log", 2});
        daemon.wait_ready();
        result = timed_suite(
            spec, [&] { build_client_template(daemon.port(), context.spec); },
            [&](int) {
                return spec.kind == "sticky"
                           ? sticky_reset_worker(daemon.url(), suite_template, spec.work)
                           : pglease_worker(daemon.url(), suite_template, give_back::recycle,
                                            spec.work);
            });
        daemon.stop();
    }
    fs::remove_all(dir);
    return std::move(*result);
}

// ---- the report ----

namespace {

const suite_result* status_quo_of(const std::vector<suite_result>& suites, const suite_result& s) {
    for (const auto& other : suites) {
        if (other.spec.kind == "clone" && other.spec.workers == s.spec.workers &&
            other.spec.work == s.spec.work) {
            return &other;
        }
    }
    return nullptr;
}

double ttd_p50(const suite_result& s) {
    return percentile(s.tests.time_to_database_ms, 50);
}

std::optional<double> wall_ratio(const std::vector<suite_result>& suites, const suite_result& s) {
    const auto* base = status_quo_of(suites, s);
    if (base == nullptr || s.seconds <= 0) {
        return std::nullopt;
    }
    return base->seconds / s.seconds;
}

std::optional<double> ttd_ratio(const std::vector<suite_result>& suites, const suite_result& s) {
    const auto* base = status_quo_of(suites, s);
    if (base == nullptr || !(ttd_p50(s) > 0)) {
        return std::nullopt;
    }
    return ttd_p50(*base) / ttd_p50(s);
}

std::string shown(std::optional<double> value, const char* format) {
    if (!value || std::isnan(*value)) {
        return "-";
    }
    char text[32];
    std::snprintf(text, sizeof text, format, *value);
    return text;
}

}  // namespace

void print_suites(const std::vector<suite_result>& suites) {
    if (suites.empty()) {
        return;
    }
    std::printf(
        "\nWhole suites (small template): N tests over W workers, each test's queries then its "
        "own work (ms) with the connection open.\nwall s: the suite's wall clock from the server "
        "up, template not built, to the last test's end; setup s: the template's build within "
        "it.\nx wall, x TTD: durable clone per test's wall clock / this one's, and its TTD "
        "p50 / this one's, at the same W and work.\n\n");
    const char* header = "%-28s %3s %5s %5s %8s %7s %8s %8s %8s %7s %7s\n";
    std::printf(header, "suite", "W", "work", "tests", "wall s", "setup s", "tests/s", "TTD p50",
                "TTD p99", "x wall", "x TTD");
    for (const auto& s : suites) {
        std::printf(
            header, s.label.c_str(), std::to_string(s.spec.workers).c_str(),
            std::to_string(s.spec.work.count()).c_str(), std::to_string(s.tests.iterations).c_str(),
            shown(s.seconds, "%.2f").c_str(), shown(s.setup_seconds, "%.2f").c_str(),
            shown(s.seconds > 0 ? static_cast<double>(s.tests.iterations) / s.seconds : 0, "%.1f")
                .c_str(),
            shown(ttd_p50(s), "%.2f").c_str(),
            shown(percentile(s.tests.time_to_database_ms, 99), "%.2f").c_str(),
            shown(wall_ratio(suites, s), "%.1f").c_str(),
            shown(ttd_ratio(suites, s), "%.1f").c_str());
    }
    for (const auto& s : suites) {
        if (s.tests.reclones > 0) {
            std::printf("  (%s W=%d work=%lld: %zu of %zu resets answered by a reclone)\n",
                        s.label.c_str(), s.spec.workers,
                        static_cast<long long>(s.spec.work.count()), s.tests.reclones,
                        s.tests.iterations);
        }
    }
    std::printf("\nTargets (W = 4, 20 ms tests, against durable clone per test):\n");
    bool any = false;
    for (const auto& s : suites) {
        const bool pglease = s.spec.kind != "clone" && s.spec.kind != "schema";
        if (s.spec.workers != 4 || s.spec.work != 20ms || !pglease) {
            continue;
        }
        any = true;
        const auto wall = wall_ratio(suites, s);
        const auto ttd = ttd_ratio(suites, s);
        std::printf("  %-28s suite %sx faster (target 3x: %s); TTD p50 %sx (target 20x: %s)\n",
                    s.label.c_str(), shown(wall, "%.1f").c_str(),
                    wall ? (*wall >= 3 ? "holds" : "does not hold") : "not measured",
                    shown(ttd, "%.1f").c_str(),
                    ttd ? (*ttd >= 20 ? "holds" : "does not hold") : "not measured");
    }
    if (!any) {
        std::printf("  not measured: no pglease suite at W = 4 with 20 ms tests\n");
    }
}

json suites_json(const std::vector<suite_result>& suites) {
    json out = json::array();
    for (const auto& s : suites) {
        const auto& t = s.tests;
        const auto number_or_null = [](std::optional<double> v) {
            return v && !std::isnan(*v) ? json(*v) : json(nullptr);
        };
        out.push_back({{"kind", s.spec.kind},
                       {"label", s.label},
                       {"workers", s.spec.workers},
                       {"work_ms", s.spec.work.count()},
                       {"tests", s.spec.tests},
                       {"tests_run", t.iterations},
                       {"wall_seconds", s.seconds},
                       {"setup_seconds", s.setup_seconds},
                       {"host_busy", t.host_busy},
                       {"ttd_ms",
                        {{"p50", number_or_null(percentile(t.time_to_database_ms, 50))},
                         {"p99", number_or_null(percentile(t.time_to_database_ms, 99))},
                         {"max", number_or_null(percentile(t.time_to_database_ms, 100))}}},
                       {"over_durable_clone",
                        {{"wall", number_or_null(wall_ratio(suites, s))},
                         {"ttd_p50", number_or_null(ttd_ratio(suites, s))}}},
                       {"sticky_reclones", t.reclones},
                       {"errors", t.errors}});
    }
    return out;
}

}  // namespace pglease::bench
