#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>

#include "bench/bench_database.hpp"
#include "bench/workload.hpp"

// The scenarios' moving parts: an embedded cluster with the template built by hand for the
// baselines, a pgleased process for the pglease scenarios, and the worker of each scenario.
namespace pglease::bench {

/// A PostgreSQL server the baselines use as a test suite without pglease would: a template
/// database to clone, an empty shared database for schemas, and a login role for the workers.
class baseline_server {
  public:
    static constexpr const char* template_database = "bench_template";
    static constexpr const char* shared_database = "bench_shared";

    virtual ~baseline_server() = default;
    /// The workers' role over TCP with its password, as a test connects.
    virtual std::string worker_conninfo(const std::string& database) const = 0;
    /// The statement that clones the template database into `name`.
    virtual std::string clone_statement(const std::string& name) const = 0;
    virtual const template_spec& spec() const noexcept = 0;
};

/// An embedded cluster (the daemon's own code and settings) holding the template database,
/// an empty shared database and a login role for the workers; clones use FILE_COPY.
class baseline_cluster final : public baseline_server {
  public:
    /// Starts a cluster in `data_dir` (initdb) and builds `spec` into the template database.
    baseline_cluster(const std::filesystem::path& data_dir, const template_spec& spec);
    baseline_cluster(const baseline_cluster&) = delete;
    baseline_cluster& operator=(const baseline_cluster&) = delete;
    ~baseline_cluster() override;

    /// The superuser over the unix socket.
    std::string admin_conninfo(const std::string& database) const;
    std::string worker_conninfo(const std::string& database) const override;
    std::string clone_statement(const std::string& name) const override;
    /// Gives the workers' role PostgreSQL's default password secret (4096 SCRAM iterations)
    /// instead of the cheap one pglease gives its lease role.
    void use_default_password_secret() const;
    const template_spec& spec() const noexcept override { return spec_; }

  private:
    struct state;
    std::unique_ptr<state> state_;
    template_spec spec_;
};

/// A pgleased process with the embedded cluster in `data_dir`; stopped with SIGTERM when dropped.
class pglease_daemon {
  public:
    struct options {
        std::filesystem::path program;
        std::filesystem::path config;
        std::filesystem::path data_dir;
        std::filesystem::path log;
        int max_parallel_clones = 2;
    };

    explicit pglease_daemon(const options& o);
    pglease_daemon(const pglease_daemon&) = delete;
    pglease_daemon& operator=(const pglease_daemon&) = delete;
    ~pglease_daemon();

    const std::string& url() const noexcept { return url_; }
    std::uint16_t port() const noexcept { return port_; }
    pid_t pid() const noexcept;

    /// Waits until /readyz answers 200, as a CI job waits for its service's health check.
    void wait_ready(std::chrono::seconds limit = std::chrono::seconds(120)) const;
    /// Waits until `template_name` is ready with at least `idle` idle clones.
    void wait_for_idle(const std::string& template_name, int idle,
                       std::chrono::seconds limit = std::chrono::seconds(600)) const;
    /// Waits until nothing is leased, being created, reset or dropped, and the pool has min_idle
    /// idle clones: exactly (`exact`: a surplus left by reuse is dropped after pgleased's 10 s
    /// grace) or at least.
    void wait_settled(const std::string& template_name, bool exact,
                      std::chrono::seconds limit = std::chrono::seconds(120)) const;
    /// The template's idle clones now.
    int idle(const std::string& template_name) const;

    /// Totals of the daemon's clone and drop histograms: seconds, count, and drops over 100 ms.
    struct operation_totals {
        double clone_seconds = 0;
        double clones = 0;
        double drop_seconds = 0;
        double drops = 0;
        double slow_drops = 0;
        /// Resets in place (pglease_reset_duration_seconds) and reclones instead of a reset.
        double reset_seconds = 0;
        double resets = 0;
        double reclones = 0;
    };
    operation_totals operations() const;

    /// SIGTERM, then waits for a clean exit; throws when it does not exit cleanly.
    void stop();

  private:
    struct state;
    std::unique_ptr<state> state_;
    std::string url_;
    std::uint16_t port_ = 0;
};

/// How a pglease worker gives its database back.
enum class give_back { recycle, reuse };

// `work`: how long each test waits on the client's side after its queries, its connection
// open, as a test doing real work (a request to the code under test, a computation) does.

/// Leases over HTTP, connects, runs the body (rolled back with `reuse`) and releases.
std::unique_ptr<worker> pglease_worker(const std::string& url, const std::string& template_name,
                                       give_back mode, std::chrono::milliseconds work = {});
/// Holds one lease and one connection for all its iterations: resets the lease (the
/// time-to-database), runs the body on the same connection.
std::unique_ptr<worker> sticky_reset_worker(const std::string& url,
                                            const std::string& template_name,
                                            std::chrono::milliseconds work = {});
/// Lease and release only, no connection: recycle every `recycle_every`th time, reuse otherwise.
std::unique_ptr<worker> lease_cycle_worker(const std::string& url, const std::string& template_name,
                                           int recycle_every);
/// CREATE DATABASE … TEMPLATE, connect, body, DROP DATABASE: what test suites hand-roll.
std::unique_ptr<worker> clone_per_test_worker(const baseline_server& server, int index,
                                              std::chrono::milliseconds work = {});
/// CREATE DATABASE … TEMPLATE and DROP DATABASE in a loop: PostgreSQL's own limit.
std::unique_ptr<worker> raw_clone_worker(const baseline_cluster& cluster, int index);
/// CREATE SCHEMA, the template's migrations in it, body, DROP SCHEMA … CASCADE.
std::unique_ptr<worker> schema_per_test_worker(const baseline_server& server, int index,
                                               std::chrono::milliseconds work = {});
/// Connects to an existing database and disconnects: the floor of any time-to-database.
std::unique_ptr<worker> connect_only_worker(const baseline_cluster& cluster);

}  // namespace pglease::bench
