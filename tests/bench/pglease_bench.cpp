// pglease-bench: time-to-database and throughput of pglease against what test suites do without
// it, every scenario on its own embedded PostgreSQL with the same settings, in one run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/bench_database.hpp"
#include "bench/scenarios.hpp"
#include "bench/suites.hpp"
#include "bench/workload.hpp"
#include "embedded/data_dir.hpp"
#include "pglease/client.hpp"

namespace {

namespace fs = std::filesystem;
namespace bench = pglease::bench;
using namespace std::chrono_literals;
using json = nlohmann::json;

struct scenario_info {
    std::string id;
    std::string label;
    bool pglease = false;
};

std::vector<scenario_info> all_scenarios() {
    return {
        {"recycle", "pglease recycle (reset)", true},
        {"reclone", "pglease recycle (reclone)", true},
        {"sticky", "pglease sticky reset", true},
        {"reuse", "pglease reuse", true},
        {"churn", "pglease recycle, no test", true},
        {"clone", "clone per test", false},
        {"ceiling", "raw clone ceiling", false},
        {"schema", "schema per test", false},
        {"connect", "connect only", false},
        {"recycle-disk", "pglease recycle (reset), disk", true},
        {"reclone-disk", "pglease recycle (reclone), disk", true},
    };
}

struct options {
    fs::path pgleased = PGLEASED_PATH;
    bool quick = false;
    std::vector<int> workers{1, 4, 16};
    double seconds = 6;
    std::vector<std::string> templates{"small", "medium"};
    std::vector<std::string> scenarios;
    fs::path work_dir;
    fs::path disk_dir = "/var/tmp";
    std::size_t cycles = 10000;
    int live_leases = 200;
    double idle_seconds = 10;
    int paired_rounds = 6;
    int paired_workers = 4;
    fs::path json_file;
    std::vector<std::string> suites;
    int suite_tests = 240;
    std::vector<int> suite_workers{4, 16};
    std::vector<int> suite_work_ms{20, 100};
};

struct row {
    std::string template_name;
    std::string scenario;
    int workers = 0;
    bench::run_result measured;
    std::optional<bench::run_result> warm;
    std::optional<double> cpu_seconds;
    std::optional<double> peak_rss_mb;
    /// The daemon's clones and drops during the measured run.
    std::optional<bench::pglease_daemon::operation_totals> operations;
};

struct memory_report {
    std::size_t cycles = 0;
    double cycles_per_second = 0;
    int live_leases = 0;
    double rss_mb = 0;
    double peak_rss_mb = 0;
    double idle_seconds = 0;
    double idle_cpu_seconds = 0;
    long long idle_runs = 0;
    /// Lease calls on a quiet warm pool: one worker, released with reuse, nothing cloned.
    std::vector<double> quiet_lease_ms;
    /// The release calls (reuse) of those.
    std::vector<double> quiet_release_ms;
    /// The same on a daemon with per-lease roles (a role made at each lease, dropped at release).
    std::vector<double> quiet_roles_lease_ms;
    std::vector<double> quiet_roles_release_ms;
    std::vector<std::string> errors;
};

struct context {
    options opts;
    fs::path ram_root;
    fs::path disk_root;
    std::vector<row> rows;
    std::optional<memory_report> memory;
    /// Interleaved rounds: iterations/s of each kind, one entry per round.
    std::map<std::string, std::vector<double>> paired;
    std::vector<bench::suite_result> suites;
};

fs::path make_dir(const fs::path& dir) {
    fs::create_directories(dir);
    // The embedded cluster runs as another user when this runs as root: let it through.
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    return dir;
}

bench::template_spec spec_named(const std::string& name) {
    return name == "medium" ? bench::medium_template() : bench::small_template();
}

/// Idle clones the warm phase takes: enough for a stable p99, without waiting for a clone.
int warm_leases(const options& o, const std::string& template_name, int workers) {
    if (o.quick) {
        return 2 * workers + 2;
    }
    return template_name == "medium" ? std::max(8, 2 * workers) : std::max(16, 4 * workers);
}

const bench::clock::time_point& bench_start() {
    static const auto start = bench::clock::now();
    return start;
}

void progress(const row& r) {
    std::ostringstream line;
    line << "["
         << static_cast<long>(
                std::chrono::duration<double>(bench::clock::now() - bench_start()).count())
         << " s] " << r.template_name << " " << r.scenario << " W=" << r.workers << ": "
         << static_cast<long>(r.measured.per_second()) << " it/s, time-to-database p50 "
         << bench::percentile(r.measured.time_to_database_ms, 50) << " ms";
    if (r.operations && r.operations->drops > 0) {
        line << "; drops " << r.operations->drop_seconds * 1000 / r.operations->drops
             << " ms on average, " << r.operations->slow_drops << " of " << r.operations->drops
             << " over 100 ms";
    }
    if (r.measured.reclones > 0) {
        line << "; " << r.measured.reclones << " resets answered by a reclone";
    }
    if (!r.measured.errors.empty()) {
        line << ", " << r.measured.errors.size() << " failed workers";
    }
    std::cerr << line.str() << std::endl;
}

void write_config(const fs::path& file, const bench::template_spec& spec,
                  const fs::path& migrations, int min_idle, int max_total,
                  const std::string& recycle = "reset", bool per_lease_roles = false) {
    json config = {{"templates",
                    {{spec.name,
                      {{"migrations", migrations.string()},
                       {"pool",
                        {{"min_idle", min_idle},
                         {"max_total", max_total},
                         {"strategy", "FILE_COPY"},
                         {"recycle", recycle}}},
                       {"lease",
                        {{"ttl_seconds", 600},
                         {"max_ttl_seconds", 3600},
                         {"wait_seconds", 120},
                         {"max_wait_seconds", 300}}}}}}}};
    if (per_lease_roles) {
        config["embedded"] = {{"per_lease_roles", true}};
    }
    std::ofstream(file) << config.dump(2) << "\n";
}

void run_pglease_scenario(context& ctx, const scenario_info& scenario,
                          const bench::template_spec& spec, const fs::path& migrations) {
    const bool on_disk = scenario.id.ends_with("-disk");
    const bool reuse = scenario.id == "reuse";
    const bool churn = scenario.id == "churn";
    const bool sticky = scenario.id == "sticky";
    const std::string recycle = scenario.id.starts_with("reclone") ? "reclone" : "reset";
    const fs::path dir =
        make_dir((on_disk ? ctx.disk_root : ctx.ram_root) / (spec.name + "-" + scenario.id));
    const fs::path data_dir = dir / "cluster";
    const auto mode = reuse ? bench::give_back::reuse : bench::give_back::recycle;
    for (const int w : ctx.opts.workers) {
        const int warm = warm_leases(ctx.opts, spec.name, w);
        const fs::path config = dir / "pglease.json";
        write_config(config, spec, migrations, warm, warm + 2 * w + 8, recycle);
        bench::pglease_daemon daemon({ctx.opts.pgleased, config, data_dir,
                                      dir / ("pgleased-w" + std::to_string(w) + ".log"), w});
        daemon.wait_for_idle(spec.name, warm);
        const auto make = [&](int) {
            if (sticky) {
                return bench::sticky_reset_worker(daemon.url(), spec.name);
            }
            return churn ? bench::lease_cycle_worker(daemon.url(), spec.name, 1)
                         : bench::pglease_worker(daemon.url(), spec.name, mode);
        };
        const auto before = bench::read_process_usage(daemon.pid());
        row r{spec.name, scenario.label, w, {}, {}, {}, {}, {}};
        // Warm: every lease finds an idle clone.
        r.warm = bench::run_workers(w, {600s, static_cast<std::size_t>(warm)}, make);
        // Saturated: the idle clones are used up first, so the run measures the steady state.
        for (int round = 0; !reuse && !sticky && round < 5 && daemon.idle(spec.name) > 0; ++round) {
            const auto drain = bench::run_workers(w, {60s, static_cast<std::size_t>(2 * w)}, make);
            r.warm->errors.insert(r.warm->errors.end(), drain.errors.begin(), drain.errors.end());
        }
        const auto operations_before = daemon.operations();
        r.measured = bench::run_workers(
            w, {std::chrono::duration<double>(ctx.opts.seconds), std::nullopt}, make);
        const auto operations_after = daemon.operations();
        r.operations = bench::pglease_daemon::operation_totals{
            operations_after.clone_seconds - operations_before.clone_seconds,
            operations_after.clones - operations_before.clones,
            operations_after.drop_seconds - operations_before.drop_seconds,
            operations_after.drops - operations_before.drops,
            operations_after.slow_drops - operations_before.slow_drops,
            operations_after.reset_seconds - operations_before.reset_seconds,
            operations_after.resets - operations_before.resets,
            operations_after.reclones - operations_before.reclones};
        const auto after = bench::read_process_usage(daemon.pid());
        daemon.stop();
        r.cpu_seconds = after.cpu_seconds - before.cpu_seconds;
        r.peak_rss_mb = after.peak_rss_mb;
        r.measured.errors.insert(r.measured.errors.end(), r.warm->errors.begin(),
                                 r.warm->errors.end());
        progress(r);
        ctx.rows.push_back(std::move(r));
    }
    if (scenario.id == "recycle" && spec.name == "small" && ctx.opts.cycles > 0) {
        // The daemon's memory after many cycles with many live leases, and its idle CPU.
        memory_report m;
        const int min_idle = 16;
        const fs::path config = dir / "pglease-memory.json";
        write_config(config, spec, migrations, min_idle, ctx.opts.live_leases + 2 * min_idle);
        bench::pglease_daemon daemon(
            {ctx.opts.pgleased, config, data_dir, dir / "pgleased-memory.log", 4});
        daemon.wait_for_idle(spec.name, min_idle);
        const auto cycles = bench::run_workers(16, {1800s, ctx.opts.cycles}, [&](int) {
            return bench::lease_cycle_worker(daemon.url(), spec.name, 5);
        });
        m.cycles = cycles.iterations;
        m.cycles_per_second = cycles.per_second();
        m.errors = cycles.errors;
        daemon.wait_settled(spec.name, false);
        const auto quiet = bench::run_workers(1, {600s, ctx.opts.cycles / 5 + 1}, [&](int) {
            // index 0 is recycled; the rest are reused.
            return bench::lease_cycle_worker(daemon.url(), spec.name, 1 << 30);
        });
        m.quiet_lease_ms = quiet.lease_call_ms;
        m.quiet_release_ms = quiet.release_call_ms;
        m.errors.insert(m.errors.end(), quiet.errors.begin(), quiet.errors.end());
        std::vector<std::string> held;
        {
            pglease::client::client http(daemon.url());
            pglease::client::lease_options hold;
            hold.ttl = 600s;
            hold.wait = 120s;
            for (int i = 0; i < ctx.opts.live_leases; ++i) {
                held.push_back(http.acquire(spec.name, hold).id);
            }
            m.live_leases = static_cast<int>(held.size());
            const auto live = bench::read_process_usage(daemon.pid());
            m.rss_mb = live.rss_mb;
            m.peak_rss_mb = live.peak_rss_mb;
            for (const auto& id : held) {
                http.release(id);
            }
        }
        // Truly idle: the surplus the cycles left is dropped first (not worth 10 s in --quick).
        daemon.wait_settled(spec.name, !ctx.opts.quick);
        std::this_thread::sleep_for(1s);
        const auto idle_from = bench::read_process_usage(daemon.pid());
        std::this_thread::sleep_for(std::chrono::duration<double>(ctx.opts.idle_seconds));
        const auto idle_to = bench::read_process_usage(daemon.pid());
        m.idle_seconds = ctx.opts.idle_seconds;
        m.idle_cpu_seconds = idle_to.thread_cpu_seconds - idle_from.thread_cpu_seconds;
        m.idle_runs = idle_to.thread_runs - idle_from.thread_runs;
        daemon.stop();
        {
            // The same quiet calls with a LOGIN role made and dropped for each lease.
            const fs::path roles_config = dir / "pglease-roles.json";
            write_config(roles_config, spec, migrations, min_idle, 2 * min_idle, "reset", true);
            bench::pglease_daemon roles(
                {ctx.opts.pgleased, roles_config, data_dir, dir / "pgleased-roles.log", 4});
            roles.wait_for_idle(spec.name, min_idle);
            roles.wait_settled(spec.name, false);
            const auto quiet_roles = bench::run_workers(
                1, {600s, ctx.opts.cycles / 5 + 1},
                [&](int) { return bench::lease_cycle_worker(roles.url(), spec.name, 1 << 30); });
            m.quiet_roles_lease_ms = quiet_roles.lease_call_ms;
            m.quiet_roles_release_ms = quiet_roles.release_call_ms;
            m.errors.insert(m.errors.end(), quiet_roles.errors.begin(), quiet_roles.errors.end());
            roles.stop();
        }
        std::cerr << "memory: " << m.rss_mb << " MB with " << m.live_leases << " live leases after "
                  << m.cycles << " cycles; idle CPU " << m.idle_cpu_seconds * 1000 << " ms over "
                  << m.idle_seconds << " s" << std::endl;
        ctx.memory = std::move(m);
    }
    fs::remove_all(dir);
}

/// Short rounds of pglease recycle, pglease recycle without a test and the raw clone ceiling,
/// interleaved on clusters that all stay up, so that each round's ratios see the same machine.
void run_paired_rounds(context& ctx, const bench::template_spec& spec, const fs::path& migrations) {
    const int w = ctx.opts.paired_workers;
    const fs::path dir = make_dir(ctx.ram_root / (spec.name + "-paired"));
    {
        bench::baseline_cluster cluster(dir / "baseline", spec);
        const fs::path config = dir / "pglease.json";
        write_config(config, spec, migrations, w, 3 * w + 8);
        bench::pglease_daemon daemon(
            {ctx.opts.pgleased, config, dir / "cluster", dir / "pgleased.log", w});
        daemon.wait_for_idle(spec.name, w);
        const std::vector<std::string> kinds{"pglease recycle (reset)", "pglease recycle, no test",
                                             "raw clone ceiling"};
        const auto make_for = [&](const std::string& kind) {
            return [&, kind](int index) -> std::unique_ptr<bench::worker> {
                if (kind == "raw clone ceiling") {
                    return bench::raw_clone_worker(cluster, index);
                }
                if (kind == "pglease recycle (reset)") {
                    return bench::pglease_worker(daemon.url(), spec.name,
                                                 bench::give_back::recycle);
                }
                return bench::lease_cycle_worker(daemon.url(), spec.name, 1);
            };
        };
        for (int round = 0; round < ctx.opts.paired_rounds; ++round) {
            for (std::size_t k = 0; k < kinds.size(); ++k) {
                // Each round starts with another kind, so no kind always follows the same one.
                const std::string& kind =
                    kinds[(k + static_cast<std::size_t>(round)) % kinds.size()];
                const auto make = make_for(kind);
                for (int drain = 0; kind != kinds[2] && drain < 5 && daemon.idle(spec.name) > 0;
                     ++drain) {
                    bench::run_workers(w, {60s, static_cast<std::size_t>(2 * w)}, make);
                }
                const auto result = bench::run_workers(
                    w, {std::chrono::duration<double>(ctx.opts.seconds / 3), std::nullopt}, make);
                if (!result.errors.empty()) {
                    throw std::runtime_error("paired round: " + result.errors.front());
                }
                ctx.paired[kind].push_back(result.per_second());
            }
        }
        daemon.stop();
    }
    fs::remove_all(dir);
    std::cerr << "paired rounds done" << std::endl;
}

void run_baseline_scenario(context& ctx, const scenario_info& scenario,
                           const bench::template_spec& spec) {
    const fs::path dir = make_dir(ctx.ram_root / (spec.name + "-" + scenario.id));
    {
        bench::baseline_cluster cluster(dir / "cluster", spec);
        const auto make = [&](int index) -> std::unique_ptr<bench::worker> {
            if (scenario.id == "clone") {
                return bench::clone_per_test_worker(cluster, index);
            }
            if (scenario.id == "ceiling") {
                return bench::raw_clone_worker(cluster, index);
            }
            if (scenario.id == "schema") {
                return bench::schema_per_test_worker(cluster, index);
            }
            return bench::connect_only_worker(cluster);
        };
        for (const int w : ctx.opts.workers) {
            row r{spec.name, scenario.label, w, {}, {}, {}, {}, {}};
            r.measured = bench::run_workers(
                w, {std::chrono::duration<double>(ctx.opts.seconds), std::nullopt}, make);
            progress(r);
            ctx.rows.push_back(std::move(r));
        }
        if (scenario.id == "connect") {
            // What a login costs with PostgreSQL's default secret, as most test roles have.
            cluster.use_default_password_secret();
            row r{spec.name, "connect, 4096 SCRAM", 1, {}, {}, {}, {}, {}};
            r.measured = bench::run_workers(
                1, {std::chrono::duration<double>(ctx.opts.seconds), std::nullopt}, make);
            progress(r);
            ctx.rows.push_back(std::move(r));
        }
    }
    fs::remove_all(dir);
}

/// Whole suites on the small template: each status-quo suite on a durable server of its own
/// (on disk, fresh as a CI job's service container is), each pglease suite with a pgleased of
/// its own; for each W and work, every kind in turn.
void run_suites(context& ctx) {
    const auto& o = ctx.opts;
    const auto spec = bench::small_template();
    const bench::suite_context pglease{o.pgleased, ctx.ram_root, spec};
    for (const int work : o.suite_work_ms) {
        for (const int w : o.suite_workers) {
            for (const auto& [kind, label] : bench::suite_kinds()) {
                if (!o.suites.empty() &&
                    std::find(o.suites.begin(), o.suites.end(), kind) == o.suites.end()) {
                    continue;
                }
                const bench::suite_spec suite{kind, w, std::chrono::milliseconds(work),
                                              o.suite_tests};
                std::optional<bench::suite_result> result;
                if (kind == "clone" || kind == "schema") {
                    const fs::path dir = ctx.disk_root / "durable";
                    {
                        const bench::durable_server durable(dir, spec);
                        result = bench::run_durable_suite(durable, suite);
                    }
                    fs::remove_all(dir);
                } else {
                    result = bench::run_pglease_suite(pglease, suite);
                }
                std::cerr << "["
                          << static_cast<long>(
                                 std::chrono::duration<double>(bench::clock::now() - bench_start())
                                     .count())
                          << " s] suite " << label << " W=" << w << " work=" << work
                          << " ms: " << result->seconds << " s for " << result->tests.iterations
                          << " tests" << std::endl;
                ctx.suites.push_back(std::move(*result));
            }
        }
    }
}

// ---- the report ----

std::string number(std::optional<double> value, int precision) {
    if (!value || std::isnan(*value)) {
        return "-";
    }
    std::ostringstream out;
    out.setf(std::ios::fixed);
    out.precision(precision);
    out << *value;
    return out.str();
}

std::optional<double> p(const std::vector<double>& values, double q) {
    if (values.empty()) {
        return std::nullopt;
    }
    return bench::percentile(values, q);
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
    if (!a || !b || *b <= 0) {
        return std::nullopt;
    }
    return *a / *b;
}

const row* find_row(const context& ctx, const std::string& template_name, const std::string& label,
                    int workers) {
    for (const auto& r : ctx.rows) {
        if (r.template_name == template_name && r.scenario == label && r.workers == workers) {
            return &r;
        }
    }
    return nullptr;
}

std::optional<double> ttd_p50(const row* r) {
    return r != nullptr ? p(r->measured.time_to_database_ms, 50) : std::nullopt;
}
std::optional<double> warm_ttd_p50(const row* r) {
    return r != nullptr && r->warm ? p(r->warm->time_to_database_ms, 50) : std::nullopt;
}
std::optional<double> rate(const row* r) {
    return r != nullptr && r->measured.iterations > 0 ? std::optional(r->measured.per_second())
                                                      : std::nullopt;
}

std::string cpu_per_iteration(const bench::run_result& r) {
    if (r.iterations == 0) {
        return "-";
    }
    return number(r.host_cpu_seconds * 1000 / static_cast<double>(r.iterations), 1);
}

// One reset in place against one drop + clone, each as pgleased timed it, rows of the same
// template, W and storage side by side.
void print_reset_summary(const context& ctx) {
    std::printf("\nReset in place against drop + clone (pgleased's own times, ms on average):\n");
    for (const auto& r : ctx.rows) {
        const bool disk = r.scenario.ends_with(", disk");
        if (!r.operations || !r.scenario.starts_with("pglease recycle (reset)")) {
            continue;
        }
        const row* reclone = find_row(
            ctx, r.template_name,
            disk ? "pglease recycle (reclone), disk" : "pglease recycle (reclone)", r.workers);
        if (reclone == nullptr || !reclone->operations) {
            continue;
        }
        const auto& o = *reclone->operations;
        const auto reset_ms = ratio(r.operations->reset_seconds * 1000, r.operations->resets);
        const auto drop_clone_ms =
            o.clones > 0 && o.drops > 0
                ? std::optional(o.clone_seconds * 1000 / o.clones + o.drop_seconds * 1000 / o.drops)
                : std::nullopt;
        std::printf(
            "  %-8s %-4s W=%-3d reset %s ms, drop + clone %s ms: %sx cheaper; it/s %s vs "
            "%s\n",
            r.template_name.c_str(), disk ? "disk" : "RAM", r.workers, number(reset_ms, 2).c_str(),
            number(drop_clone_ms, 1).c_str(), number(ratio(drop_clone_ms, reset_ms), 1).c_str(),
            number(rate(&r), 1).c_str(), number(rate(reclone), 1).c_str());
    }
    for (const auto& r : ctx.rows) {
        if (r.scenario != "pglease sticky reset") {
            continue;
        }
        const row* connect = find_row(ctx, r.template_name, "connect only", r.workers);
        std::printf(
            "  %-8s sticky reset W=%-3d time-to-database p50 %s ms (p99 %s), a new "
            "connection's %s ms; %zu of %zu answered by a reclone\n",
            r.template_name.c_str(), r.workers, number(ttd_p50(&r), 2).c_str(),
            number(p(r.measured.time_to_database_ms, 99), 2).c_str(),
            number(ttd_p50(connect), 2).c_str(), r.measured.reclones, r.measured.iterations);
    }
}

void print_table(const context& ctx) {
    std::printf(
        "\nTimes in ms. TTD: time-to-database, from asking to a connected session (the raw "
        "clone ceiling: the CREATE alone).\nwarm: every lease finds an idle clone. lease: "
        "the HTTP lease call on a warm pool. rel: the release call of the measured run, after the "
        "test closed its connection. CPU s, RSS: pgleased's.\nhost%%: the machine's CPUs "
        "busy; CPU/it: ms of the machine's CPU per iteration, every process together.\nx clone: "
        "clone per test's "
        "TTD p50 / this TTD p50 (higher is faster); warm x: the same with the warm TTD p50.\n"
        "it/s x: iterations/s over clone per test's; /ceil: over the raw clone ceiling's.\n\n");
    const char* header =
        "%-32s %3s %7s %8s %8s %8s | %8s %7s %7s | %6s %6s | %6s %6s | %5s %6s | %7s %7s %7s "
        "%7s\n";
    std::printf(header, "scenario", "W", "it/s", "TTD p50", "p99", "max", "warm p50", "lease50",
                "lease99", "rel50", "rel99", "CPU s", "RSS MB", "host%", "CPU/it", "x clone",
                "warm x", "it/s x", "/ceil");
    std::string current;
    for (const auto& r : ctx.rows) {
        if (r.template_name != current) {
            current = r.template_name;
            const auto spec = spec_named(current);
            std::printf("-- %s template: %s\n", current.c_str(), spec.description.c_str());
        }
        const row* clone = find_row(ctx, r.template_name, "clone per test", r.workers);
        const row* ceiling = find_row(ctx, r.template_name, "raw clone ceiling", r.workers);
        const auto& m = r.measured;
        const std::vector<double> no_samples;
        const auto& lease_samples = r.warm ? r.warm->lease_call_ms : no_samples;
        std::printf(
            header, r.scenario.c_str(), std::to_string(r.workers).c_str(),
            number(m.per_second(), 1).c_str(), number(p(m.time_to_database_ms, 50), 2).c_str(),
            number(p(m.time_to_database_ms, 99), 2).c_str(),
            number(p(m.time_to_database_ms, 100), 1).c_str(), number(warm_ttd_p50(&r), 2).c_str(),
            number(p(lease_samples, 50), 3).c_str(), number(p(lease_samples, 99), 3).c_str(),
            number(p(m.release_call_ms, 50), 2).c_str(),
            number(p(m.release_call_ms, 99), 2).c_str(), number(r.cpu_seconds, 2).c_str(),
            number(r.peak_rss_mb, 1).c_str(), number(m.host_busy * 100, 0).c_str(),
            cpu_per_iteration(m).c_str(), number(ratio(ttd_p50(clone), ttd_p50(&r)), 1).c_str(),
            number(ratio(ttd_p50(clone), warm_ttd_p50(&r)), 1).c_str(),
            number(ratio(rate(&r), rate(clone)), 2).c_str(),
            number(ratio(rate(&r), rate(ceiling)), 2).c_str());
    }
    std::printf(
        "\npgleased's clones, drops and resets during the measured runs (ms on average):\n");
    std::printf("%-10s %-32s %3s %7s %8s %7s %8s %12s %7s %8s %8s\n", "template", "scenario", "W",
                "clones", "clone ms", "drops", "drop ms", "drops >100ms", "resets", "reset ms",
                "reclones");
    for (const auto& r : ctx.rows) {
        if (!r.operations) {
            continue;
        }
        const auto& o = *r.operations;
        std::printf("%-10s %-32s %3d %7.0f %8s %7.0f %8s %12.0f %7.0f %8s %8.0f\n",
                    r.template_name.c_str(), r.scenario.c_str(), r.workers, o.clones,
                    number(ratio(o.clone_seconds * 1000, o.clones), 1).c_str(), o.drops,
                    number(ratio(o.drop_seconds * 1000, o.drops), 1).c_str(), o.slow_drops,
                    o.resets, number(ratio(o.reset_seconds * 1000, o.resets), 2).c_str(),
                    o.reclones);
    }
    print_reset_summary(ctx);
    bench::print_suites(ctx.suites);
    if (!ctx.paired.empty()) {
        const auto& ceiling = ctx.paired.at("raw clone ceiling");
        std::printf(
            "\nInterleaved rounds (small template, W=%d, %zu rounds of %.1f s each): "
            "iterations/s over the raw clone ceiling's in the same round:\n",
            ctx.opts.paired_workers, ceiling.size(), ctx.opts.seconds / 3);
        for (const char* kind : {"pglease recycle, no test", "pglease recycle (reset)"}) {
            std::vector<double> ratios;
            const auto& rates = ctx.paired.at(kind);
            for (std::size_t i = 0; i < rates.size() && i < ceiling.size(); ++i) {
                if (ceiling[i] > 0) {
                    ratios.push_back(rates[i] / ceiling[i]);
                }
            }
            std::printf("  %-26s median %s (min %s, max %s); it/s median %s vs %s\n", kind,
                        number(p(ratios, 50), 2).c_str(), number(p(ratios, 0), 2).c_str(),
                        number(p(ratios, 100), 2).c_str(), number(p(rates, 50), 1).c_str(),
                        number(p(ceiling, 50), 1).c_str());
        }
    }
    if (ctx.memory) {
        const auto& mem = *ctx.memory;
        std::printf(
            "\npgleased after %zu lease cycles (%.0f/s, 16 workers, 1 in 5 recycled) with %d "
            "live leases: RSS %.1f MB (peak %.1f MB).\npgleased idle for %.0f s: %.1f ms of "
            "CPU, scheduled %lld times.\nHTTP lease call on a quiet warm pool (1 worker, reuse, "
            "%zu calls): p50 %s ms, p99 %s ms; release (reuse): p50 %s ms, p99 %s ms.\n",
            mem.cycles, mem.cycles_per_second, mem.live_leases, mem.rss_mb, mem.peak_rss_mb,
            mem.idle_seconds, mem.idle_cpu_seconds * 1000, mem.idle_runs, mem.quiet_lease_ms.size(),
            number(p(mem.quiet_lease_ms, 50), 3).c_str(),
            number(p(mem.quiet_lease_ms, 99), 3).c_str(),
            number(p(mem.quiet_release_ms, 50), 3).c_str(),
            number(p(mem.quiet_release_ms, 99), 3).c_str());
        std::printf(
            "The same with per-lease roles (%zu calls): lease p50 %s ms, p99 %s ms; release "
            "(reuse) p50 %s ms, p99 %s ms.\n",
            mem.quiet_roles_lease_ms.size(), number(p(mem.quiet_roles_lease_ms, 50), 3).c_str(),
            number(p(mem.quiet_roles_lease_ms, 99), 3).c_str(),
            number(p(mem.quiet_roles_release_ms, 50), 3).c_str(),
            number(p(mem.quiet_roles_release_ms, 99), 3).c_str());
    }
}

json run_json(const bench::run_result& r) {
    return {{"workers", r.workers},
            {"iterations", r.iterations},
            {"seconds", r.seconds},
            {"per_second", r.per_second()},
            {"host_busy", r.host_busy},
            {"host_cpu_seconds", r.host_cpu_seconds},
            {"ttd_ms",
             {{"p50", p(r.time_to_database_ms, 50).value_or(NAN)},
              {"p99", p(r.time_to_database_ms, 99).value_or(NAN)},
              {"max", p(r.time_to_database_ms, 100).value_or(NAN)}}},
            {"lease_call_ms",
             {{"p50", p(r.lease_call_ms, 50).value_or(NAN)},
              {"p99", p(r.lease_call_ms, 99).value_or(NAN)}}},
            {"release_call_ms",
             {{"p50", p(r.release_call_ms, 50).value_or(NAN)},
              {"p99", p(r.release_call_ms, 99).value_or(NAN)}}},
            {"sticky_reclones", r.reclones},
            {"errors", r.errors}};
}

void write_json(const context& ctx) {
    json out = json::array();
    for (const auto& r : ctx.rows) {
        json entry = {{"template", r.template_name},
                      {"scenario", r.scenario},
                      {"workers", r.workers},
                      {"measured", run_json(r.measured)}};
        if (r.warm) {
            entry["warm"] = run_json(*r.warm);
        }
        if (r.cpu_seconds) {
            entry["daemon_cpu_seconds"] = *r.cpu_seconds;
            entry["daemon_peak_rss_mb"] = *r.peak_rss_mb;
        }
        if (r.operations) {
            const auto& o = *r.operations;
            entry["daemon_operations"] = {{"clones", o.clones},
                                          {"clone_seconds", o.clone_seconds},
                                          {"drops", o.drops},
                                          {"drop_seconds", o.drop_seconds},
                                          {"drops_over_100ms", o.slow_drops},
                                          {"resets", o.resets},
                                          {"reset_seconds", o.reset_seconds},
                                          {"reclones", o.reclones}};
        }
        out.push_back(entry);
    }
    json doc = {
        {"rows", out}, {"paired_rounds", ctx.paired}, {"suites", bench::suites_json(ctx.suites)}};
    if (ctx.memory) {
        const auto& m = *ctx.memory;
        doc["memory"] = {{"cycles", m.cycles},
                         {"live_leases", m.live_leases},
                         {"rss_mb", m.rss_mb},
                         {"peak_rss_mb", m.peak_rss_mb},
                         {"idle_seconds", m.idle_seconds},
                         {"idle_cpu_seconds", m.idle_cpu_seconds},
                         {"idle_runs", m.idle_runs},
                         {"quiet_lease_call_ms",
                          {{"p50", p(m.quiet_lease_ms, 50).value_or(NAN)},
                           {"p99", p(m.quiet_lease_ms, 99).value_or(NAN)}}},
                         {"quiet_release_call_ms",
                          {{"p50", p(m.quiet_release_ms, 50).value_or(NAN)},
                           {"p99", p(m.quiet_release_ms, 99).value_or(NAN)}}},
                         {"per_lease_roles_quiet_lease_call_ms",
                          {{"p50", p(m.quiet_roles_lease_ms, 50).value_or(NAN)},
                           {"p99", p(m.quiet_roles_lease_ms, 99).value_or(NAN)}}},
                         {"per_lease_roles_quiet_release_call_ms",
                          {{"p50", p(m.quiet_roles_release_ms, 50).value_or(NAN)},
                           {"p99", p(m.quiet_roles_release_ms, 99).value_or(NAN)}}},
                         {"errors", m.errors}};
    }
    std::ofstream(ctx.opts.json_file) << doc.dump(2) << "\n";
}

int report_errors(const context& ctx) {
    int failures = 0;
    const auto show = [&](const std::string& what, const std::vector<std::string>& errors) {
        for (const auto& e : errors) {
            if (++failures <= 20) {
                std::fprintf(stderr, "pglease-bench: %s: %s\n", what.c_str(), e.c_str());
            }
        }
    };
    for (const auto& r : ctx.rows) {
        show(r.template_name + " " + r.scenario + " W=" + std::to_string(r.workers),
             r.measured.errors);
        if (r.measured.iterations == 0) {
            show(r.template_name + " " + r.scenario, {"no iteration finished"});
        }
    }
    if (ctx.memory) {
        show("memory", ctx.memory->errors);
    }
    for (const auto& s : ctx.suites) {
        show("suite " + s.label + " W=" + std::to_string(s.spec.workers), s.tests.errors);
    }
    return failures;
}

}  // namespace

int main(int argc, char** argv) {
    context ctx;
    options& o = ctx.opts;
    CLI::App app{
        "pglease-bench: time-to-database and throughput of pglease (recycle by reset in place "
        "and by reclone, sticky resets, reuse, and recycle with the data directory on disk) "
        "against clone per test, the raw clone ceiling, schema "
        "per test and a bare connect, each scenario on its own embedded PostgreSQL, W workers "
        "each. Prints one table; exits 1 if any iteration failed.",
        "pglease-bench"};
    app.add_option("--pgleased", o.pgleased, "The pgleased to run")->capture_default_str();
    app.add_flag(
        "--quick", o.quick,
        "CI smoke: small template, W=4, 0.5 s per run, no disk scenarios, 500 cycles, 20 live "
        "leases, suites (clone, reset, sticky) of 24 tests at W=4 with 20 ms of work");
    app.add_option("--workers", o.workers, "Worker counts, comma-separated")
        ->delimiter(',')
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--seconds", o.seconds, "Length of each measured run")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    app.add_option("--templates", o.templates, "small and/or medium, comma-separated")
        ->delimiter(',')
        ->check(CLI::IsMember({"small", "medium"}))
        ->capture_default_str();
    std::vector<std::string> ids;
    for (const auto& s : all_scenarios()) {
        ids.push_back(s.id);
    }
    app.add_option("--scenarios", o.scenarios,
                   "Scenarios to run, comma-separated (default: all): recycle (by reset in "
                   "place), reclone (by drop and clone), sticky (one lease per worker, reset "
                   "between tests), reuse, churn (lease and recycle without a test), clone, "
                   "ceiling, schema, connect, recycle-disk, reclone-disk")
        ->delimiter(',')
        ->check(CLI::IsMember(ids));
    app.add_option("--work-dir", o.work_dir,
                   "RAM-backed directory for the clusters (default: /dev/shm when it has room)");
    app.add_option("--disk-dir", o.disk_dir, "Directory on disk for recycle-disk")
        ->capture_default_str();
    app.add_option("--cycles", o.cycles,
                   "Lease cycles before measuring the daemon's memory (0: skip that step)")
        ->capture_default_str();
    app.add_option("--live-leases", o.live_leases, "Leases held while measuring memory")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
    app.add_option("--idle-seconds", o.idle_seconds, "How long the daemon's idle CPU is measured")
        ->check(CLI::Range(0.1, 600.0))
        ->capture_default_str();
    app.add_option("--paired-rounds", o.paired_rounds,
                   "Interleaved rounds of recycle, recycle without a test and the raw clone "
                   "ceiling on the small template (0: skip)")
        ->check(CLI::Range(0, 1000))
        ->capture_default_str();
    app.add_option("--paired-workers", o.paired_workers, "W of the interleaved rounds")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--json", o.json_file, "Also write every number to this file");
    std::vector<std::string> suite_ids;
    for (const auto& [id, label] : bench::suite_kinds()) {
        suite_ids.push_back(id);
    }
    app.add_option("--suites", o.suites,
                   "Whole suites to run, comma-separated (default: all): clone and schema (per "
                   "test, on a durable PostgreSQL on disk, as a CI service container runs it), "
                   "reset, reclone, sticky (pglease)")
        ->delimiter(',')
        ->check(CLI::IsMember(suite_ids));
    app.add_option("--suite-tests", o.suite_tests, "Tests in each whole suite (0: no suites)")
        ->check(CLI::Range(0, 100000))
        ->capture_default_str();
    app.add_option("--suite-workers", o.suite_workers, "Worker counts of the suites")
        ->delimiter(',')
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--suite-work-ms", o.suite_work_ms,
                   "Each suite test's own work after its queries, in ms, comma-separated")
        ->delimiter(',')
        ->check(CLI::Range(0, 60000))
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);
    if (o.quick) {
        const auto unless_given = [&](const char* flag, auto& value, auto quick_value) {
            if (app.count(flag) == 0) {
                value = quick_value;
            }
        };
        unless_given("--workers", o.workers, std::vector<int>{4});
        unless_given("--seconds", o.seconds, 0.5);
        unless_given("--templates", o.templates, std::vector<std::string>{"small"});
        unless_given("--cycles", o.cycles, std::size_t{500});
        unless_given("--live-leases", o.live_leases, 20);
        unless_given("--idle-seconds", o.idle_seconds, 2.0);
        unless_given("--paired-rounds", o.paired_rounds, 1);
        unless_given("--suite-tests", o.suite_tests, 24);
        unless_given("--suite-workers", o.suite_workers, std::vector<int>{4});
        unless_given("--suite-work-ms", o.suite_work_ms, std::vector<int>{20});
        unless_given("--suites", o.suites, std::vector<std::string>{"clone", "reset", "sticky"});
        std::vector<std::string> in_ram;
        for (const auto& s : all_scenarios()) {
            if (!s.id.ends_with("-disk")) {
                in_ram.push_back(s.id);
            }
        }
        unless_given("--scenarios", o.scenarios, in_ram);
    }
    if (o.work_dir.empty()) {
        const auto shm = pglease::probe_storage("/dev/shm");
        o.work_dir = shm.ram_backed && shm.available_bytes > 8ull << 30 ? fs::path("/dev/shm")
                                                                        : fs::temp_directory_path();
    }
    if (!fs::exists(o.pgleased)) {
        std::fprintf(stderr, "pglease-bench: no pgleased at %s (see --pgleased)\n",
                     o.pgleased.c_str());
        return 2;
    }
    const std::string run_name = "pglease-bench-" + std::to_string(::getpid());
    ctx.ram_root = make_dir(o.work_dir / run_name);
    ctx.disk_root = make_dir(o.disk_dir / run_name);
    int status = 0;
    const auto started = bench_start();
    try {
        for (const auto& template_name : o.templates) {
            const auto spec = spec_named(template_name);
            const fs::path migrations = ctx.ram_root / ("migrations-" + spec.name);
            bench::write_migrations(spec, migrations);
            for (const auto& scenario : all_scenarios()) {
                if (!o.scenarios.empty() && std::find(o.scenarios.begin(), o.scenarios.end(),
                                                      scenario.id) == o.scenarios.end()) {
                    continue;
                }
                if (scenario.pglease) {
                    run_pglease_scenario(ctx, scenario, spec, migrations);
                } else {
                    run_baseline_scenario(ctx, scenario, spec);
                }
            }
            if (spec.name == "small" && o.paired_rounds > 0) {
                run_paired_rounds(ctx, spec, migrations);
            }
            if (spec.name == "small" && o.suite_tests > 0) {
                run_suites(ctx);
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pglease-bench: %s\n", e.what());
        status = 1;
    }
    print_table(ctx);
    std::printf("\npglease-bench ran for %.0f s.\n",
                std::chrono::duration<double>(bench::clock::now() - started).count());
    if (!o.json_file.empty()) {
        write_json(ctx);
    }
    if (report_errors(ctx) > 0) {
        status = 1;
    }
    std::error_code ignored;
    fs::remove_all(ctx.ram_root, ignored);
    fs::remove_all(ctx.disk_root, ignored);
    return status;
}
