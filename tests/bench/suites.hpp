#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_database.hpp"
#include "bench/scenarios.hpp"
#include "bench/workload.hpp"

// Whole test suites, timed end to end as a CI job pays for them: the status quo on a durable
// PostgreSQL next to pglease on its embedded default.
namespace pglease::bench {

/// A PostgreSQL as a CI service container (`postgres:15`) gives it: initdb's defaults (fsync,
/// full-page writes, synchronous commit; CREATE DATABASE clones with WAL_LOG), its data on
/// disk, TCP logins with scram-sha-256 and PostgreSQL's default secret. Started with pg_ctl,
/// stopped when dropped. One server serves one suite, which builds its databases itself.
class durable_server final : public baseline_server {
  public:
    /// initdb into `data_dir` (on disk) and start.
    durable_server(const std::filesystem::path& data_dir, const template_spec& spec);
    durable_server(const durable_server&) = delete;
    durable_server& operator=(const durable_server&) = delete;
    ~durable_server() override;

    std::string worker_conninfo(const std::string& database) const override;
    std::string clone_statement(const std::string& name) const override;
    const template_spec& spec() const noexcept override { return spec_; }

    /// What a suite of `kind` does before its first test, as the workers' role: "clone"
    /// creates the template database and runs the migrations in it, "schema" creates the
    /// empty shared database.
    void build_databases(const std::string& kind) const;

  private:
    std::string admin_conninfo(const std::string& database) const;

    struct state;
    std::unique_ptr<state> state_;
    template_spec spec_;
};

/// What a suite runs: `tests` tests over `workers` workers, each test waiting `work` after its
/// queries. `kind` is one of suite_kinds().
struct suite_spec {
    std::string kind;
    int workers = 4;
    std::chrono::milliseconds work{20};
    int tests = 240;
};

/// The suite kinds, in the order they run: id and label.
const std::vector<std::pair<std::string, std::string>>& suite_kinds();

/// What one suite measured.
struct suite_result {
    suite_spec spec;
    std::string label;
    /// From the suite's start (the server up, no template yet) until its last test ended.
    double seconds = 0;
    /// The part of it that built the template (pglease: PUT, migrations, finalize).
    double setup_seconds = 0;
    /// The tests' runs, from the workers' start.
    run_result tests;
};

/// Where a suite's servers live and what they run.
struct suite_context {
    std::filesystem::path pgleased;
    /// RAM-backed: pgleased's data directory, as on its embedded default.
    std::filesystem::path ram_dir;
    template_spec spec;
};

/// A status-quo suite (kind "clone" or "schema") against a fresh `server`.
suite_result run_durable_suite(const durable_server& server, const suite_spec& spec);
/// A pglease suite (kind "reset", "reclone" or "sticky"): a pgleased of its own is started
/// (not timed, like a service container); the suite puts its template as a client-initialized
/// one, builds it, then runs the tests.
suite_result run_pglease_suite(const suite_context& context, const suite_spec& spec);

/// The suites' table and, for W = 4 and 20 ms tests, whether the targets hold.
void print_suites(const std::vector<suite_result>& suites);
/// The suites as JSON, with each suite's ratios over the durable clone per test at its W and
/// work.
nlohmann::json suites_json(const std::vector<suite_result>& suites);

}  // namespace pglease::bench
