#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_life.hpp"
#include "broker/lease_types.hpp"
#include "config/settings.hpp"
#include "pg/connection.hpp"

namespace pglease {

class broker_metrics;
struct deadline;
struct listed_database;
struct reconcile_plan;

/// What a shard is told besides its endpoint.
struct shard_config {
    std::string prefix = "pglease_";
    std::map<std::string, template_settings> templates;
    /// Directory migration commands run in (the config file's).
    std::filesystem::path working_dir = std::filesystem::current_path();
    /// Where what each template version holds is kept, for resets in place.
    std::filesystem::path state_dir = std::filesystem::current_path() / ".pglease-versions";
    /// How often sources are checked for changes and the backend for life.
    std::chrono::milliseconds watch_interval{2000};
    /// Pool and lease settings of client-initialized templates (the "defaults" section), and
    /// lease limits for versions whose template the configuration no longer names.
    pool_settings default_pool;
    lease_settings default_lease;
};

/// Everything pglease does on one backend, composed of parts that each own one concern:
/// templates and their builds (templates/), pools and their operations (pool/), leases, the
/// waiting line and the deadlines (leases/), and the catalog (catalog/). The shard itself owns
/// the backend's connections, its advisory lock, whether it is up, the generation of memory,
/// and the wiring between the parts. Lives on one executor; no locks. The catalog (database
/// comments) is the state: memory is rebuilt from it on start and after the backend comes back.
class backend_shard {
  public:
    /// `metrics` must outlive the shard.
    backend_shard(boost::asio::any_io_executor executor, backend_endpoint endpoint,
                  shard_config config, broker_metrics& metrics);
    backend_shard(const backend_shard&) = delete;
    backend_shard& operator=(const backend_shard&) = delete;
    ~backend_shard();

    /// Takes the backend's advisory lock (waiting as a standby while another broker holds it),
    /// adopts what the catalog says and starts serving. Returns once serving.
    boost::asio::awaitable<void> start();
    /// Stops timers and background work; the catalog stays as it is.
    boost::asio::awaitable<void> stop();

    /// Leases a clone of `template_name`, waiting up to the request's wait while the pool grows.
    boost::asio::awaitable<lease_info> acquire(std::string template_name, acquire_request request);
    /// Moves the lease's expiry to now + ttl (capped by the template's max_ttl).
    boost::asio::awaitable<lease_info> renew(std::string key,
                                             std::optional<std::chrono::seconds> ttl);
    /// Ends the lease; the clone is recycled, reused or kept.
    boost::asio::awaitable<void> release(std::string key, release_mode mode,
                                         std::optional<std::chrono::seconds> keep_for);
    /// Makes the lease's database fresh again for its holder; the lease goes on.
    boost::asio::awaitable<reset_answer> reset(std::string key);

    /// Makes sure client-initialized template `name` has a version with `fingerprint`: ready
    /// now, ready within `wait` (another caller builds it), or this caller's to build.
    boost::asio::awaitable<client_template_outcome> ensure_client_template(
        std::string name, std::string fingerprint, std::chrono::seconds wait,
        std::chrono::seconds build_ttl);
    /// Makes the built version ready; its pool fills and leases get it.
    boost::asio::awaitable<template_status> finalize_build(std::string name,
                                                           std::string fingerprint,
                                                           std::string build_id);
    /// Gives up a build: its database is dropped and the next caller builds.
    boost::asio::awaitable<void> abort_build(std::string name, std::string fingerprint,
                                             std::string build_id);

    /// The lease stored under `key` (SHA-256 of its id), if this shard holds it.
    std::optional<lease_info> find_lease(const std::string& key) const;
    /// Every live lease.
    std::vector<lease_info> leases() const;
    /// The template's state and pool, if configured or known here.
    std::optional<template_status> status(const std::string& template_name) const;
    /// Names of the configured and client-initialized templates.
    std::vector<std::string> template_names() const;
    /// Idle clones ready for `template_name` now.
    std::size_t idle_clones(const std::string& template_name) const;
    /// True while the backend is reachable and reconciled.
    bool up() const noexcept { return life_.up; }
    /// True once the catalog has been read at start (it stays true while the backend is lost).
    bool catalog_read() const noexcept { return catalog_read_; }
    /// True while another broker holds the backend's lock and this one waits for it.
    bool standby() const noexcept { return standby_; }
    /// Every database of ours on the backend (templates and clones, any state).
    std::size_t managed_databases() const noexcept;
    /// The backend's state for status and metrics.
    backend_status backend_state() const;
    const backend_endpoint& endpoint() const noexcept { return endpoint_; }
    /// Background tasks still running (after stop(): those that outlived its grace period).
    int pending_tasks() const noexcept { return life_.background_tasks; }

  private:
    struct parts;

    boost::asio::awaitable<void> supervise();
    boost::asio::awaitable<void> take_lock();
    /// One attempt at the backend's lock (connecting first when needed); true when taken.
    boost::asio::awaitable<bool> try_take_lock();
    /// Rebuilds memory from the catalog (backend_shard_recovery.cpp).
    boost::asio::awaitable<void> reconcile();
    boost::asio::awaitable<void> find_orphans(pg::connection& conn);
    /// Idle clones that sessions are connected to are offered once those are gone.
    boost::asio::awaitable<void> settle_idle_clones(pg::connection& conn,
                                                    const reconcile_plan& plan);
    /// With per-lease roles: template databases owned by another role become the admin's.
    boost::asio::awaitable<void> give_templates_to_admin(
        pg::connection& conn, const std::vector<listed_database>& listing,
        const std::string& admin);
    /// Throws memory away after the backend was lost; the catalog is read again.
    void forget_state();
    /// Finds out whether this backend can reset clones in place.
    boost::asio::awaitable<void> check_resets();
    void on_deadline(const deadline& due);

    boost::asio::any_io_executor executor_;
    backend_endpoint endpoint_;
    shard_config config_;
    broker_metrics& metrics_;
    backend_life life_;
    bool catalog_read_ = false;
    bool standby_ = false;
    std::optional<pg::connection> lock_connection_;
    /// Directories left by interrupted CREATE DATABASE, as last seen; unknown when the admin
    /// may not read the data directory.
    std::optional<orphan_files> orphans_;
    bool orphan_refusal_logged_ = false;
    std::unique_ptr<parts> parts_;
};

}  // namespace pglease
