#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/lease_types.hpp"
#include "catalog/catalog_comment.hpp"
#include "config/settings.hpp"
#include "metrics/broker_metrics.hpp"
#include "pg/connection.hpp"
#include "pg/connection_pool.hpp"
#include "pool/template_pool.hpp"

namespace pglease {

/// What a shard is told besides its endpoint.
struct shard_config {
    std::string prefix = "pglease_";
    std::map<std::string, template_settings> templates;
    /// Directory migration commands run in (the config file's).
    std::filesystem::path working_dir = std::filesystem::current_path();
    /// How often sources are checked for changes and the backend for life.
    std::chrono::milliseconds watch_interval{2000};
    /// Pool and lease settings of client-initialized templates (the "defaults" section), and
    /// lease limits for versions whose template the configuration no longer names.
    pool_settings default_pool;
    lease_settings default_lease;
};

/// Everything pglease does on one backend: its templates' versions and pools, its leases, the
/// clone and drop operations, expiry, and recovery from the catalog. Lives on one executor; no
/// locks. The catalog (database comments) is the state: memory is rebuilt from it on start and
/// after the backend comes back.
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
    bool up() const noexcept { return up_; }
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
    int pending_tasks() const noexcept { return background_tasks_; }

  private:
    struct waiter {
        explicit waiter(const boost::asio::any_io_executor& executor) : wakeup(executor) {}
        boost::asio::steady_timer wakeup;
        template_pool* pool = nullptr;
        clone* granted = nullptr;
        /// The generation the clone was granted in: memory older than now is gone.
        std::uint64_t granted_in = 0;
        /// Woken to give up now (a failed build, the broker stopping), not to wait on.
        bool give_up = false;
    };

    struct live_lease {
        lease_record record;
        template_pool* pool = nullptr;
        clone* db = nullptr;
    };

    struct client_build {
        std::string fingerprint;  // as the client gave it
        std::string key;          // SHA-256 of the build id
        std::string database;
        std::chrono::system_clock::time_point expires_at;
        std::chrono::steady_clock::time_point started;
        bool finishing = false;  // finalize or abort under way
    };

    struct template_entry {
        std::string name;
        /// Built by clients through the API rather than from a configured source.
        bool client = false;
        std::optional<client_build> build;
        std::list<waiter*> build_waiters;
        /// std::nullopt for a template the catalog knows but the configuration no longer names.
        std::optional<template_settings> settings;
        /// The ready version leases come from.
        std::unique_ptr<template_pool> current;
        /// Older versions whose clones are still leased or kept.
        std::vector<std::unique_ptr<template_pool>> draining;
        std::string wanted_fingerprint;
        std::string source_stamp;
        bool building = false;
        std::string state = "building";
        std::string error;
        int failures = 0;
        std::chrono::steady_clock::time_point retry_at{};
        std::list<waiter*> waiters;
        /// Since when the pool has held more idle clones than min_idle, with nobody waiting.
        std::optional<std::chrono::system_clock::time_point> surplus_since;
        /// A surplus_trim deadline is pending for this template.
        bool trim_check_pending = false;
    };

    /// How long idle clones beyond min_idle stay before they are dropped. Clones that workers
    /// release with reuse come back as a surplus between their tests: dropping them at once
    /// would clone and drop one database per lease.
    static constexpr std::chrono::seconds surplus_grace{10};

    enum class deadline_kind { lease_expiry, keep_expiry, build_expiry, surplus_trim };
    using deadline = std::tuple<std::chrono::system_clock::time_point, deadline_kind, std::string>;

    // Lifecycle (backend_shard.cpp)
    boost::asio::awaitable<void> supervise();
    boost::asio::awaitable<void> take_lock();
    boost::asio::awaitable<void> ensure_lease_role();
    void forget_state();
    boost::asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration how_long);

    // Catalog (backend_shard_catalog.cpp)
    boost::asio::awaitable<void> reconcile();
    void remove_orphaned_files(const std::set<std::string>& live_oids);
    /// Looks for files no database owns on a backend whose data directory is not ours, and
    /// reports them (log, metrics) where the admin may read the directory.
    boost::asio::awaitable<void> report_orphaned_files(pg::connection& conn);
    boost::asio::awaitable<void> write_comment(const std::string& database,
                                               const catalog_comment& comment);
    catalog_comment clone_comment(const template_pool& pool, const clone& c) const;

    // Templates (backend_shard_templates.cpp)
    boost::asio::awaitable<void> watch_sources();
    boost::asio::awaitable<std::optional<std::string>> source_fingerprint(template_entry& entry);
    boost::asio::awaitable<void> build_version(template_entry& entry, std::string fingerprint);
    void promote(template_entry& entry, std::unique_ptr<template_pool> ready);
    /// Closes a built template to connections, marks it a template and records it ready.
    boost::asio::awaitable<void> seal_template(std::string database, std::string name,
                                               std::string fingerprint, bool client);
    static catalog_comment template_comment(const std::string& name, const std::string& fingerprint,
                                            bool ready, bool client);
    void start_draining(template_entry& entry, std::unique_ptr<template_pool> pool);
    template_entry& entry_for(const std::string& name);
    /// The role leases of `entry` hand out: its own lease_role, else the backend's. It owns the
    /// template database and every clone, so workers may create and alter anything in them.
    const std::string& lease_role_of(const template_entry& entry) const;
    const std::string& lease_password_of(const template_entry& entry) const;

    // Client-initialized templates (backend_shard_clients.cpp)
    template_settings client_settings(const std::string& name) const;
    client_build& find_build(template_entry& entry, const std::string& fingerprint,
                             const std::string& build_id);
    void end_build(template_entry& entry, bool drop_database);
    static std::string client_fingerprint(const std::string& given);

    // Pool operations (backend_shard_pool.cpp)
    void schedule();
    bool wants_clone(const template_entry& entry, bool for_waiters_only) const;
    bool has_room() const noexcept;
    boost::asio::awaitable<void> create_clone(template_pool& pool);
    boost::asio::awaitable<void> drop_clone(template_pool& pool, std::string name);
    boost::asio::awaitable<void> drop_template_database(std::string name);
    void queue_drop(template_pool& pool, clone& c);
    /// Drops database `name` (un-marking it as a template first); with `unless_in_use`, not when
    /// some version, build or pool needs it again. False when it was left alone.
    boost::asio::awaitable<bool> drop_database(pg::connection& conn, std::string name,
                                               bool unless_in_use);
    /// True when `name` is a template database some version, build or pool still needs.
    bool template_database_in_use(const std::string& name) const;
    /// Hands idle clones to waiting workers (after memory was rebuilt from the catalog).
    void serve_waiters();
    void became_idle(template_pool& pool, clone& c);
    void retire_empty_pools();
    template_pool* pool_of(const std::string& template_name, const std::string& fingerprint);

    // Leases (backend_shard_leases.cpp)
    /// Records the lease on `c` and describes it; std::nullopt when the backend restarted
    /// meanwhile and the lease is not in the rebuilt memory (the caller tries again).
    boost::asio::awaitable<std::optional<lease_info>> grant(template_entry& entry,
                                                            template_pool& pool, clone& c,
                                                            const acquire_request& request,
                                                            std::chrono::seconds ttl);
    /// A grant whose memory was thrown away while its comment was written: the lease, once
    /// memory is rebuilt and holds it, else std::nullopt.
    boost::asio::awaitable<std::optional<lease_info>> after_restart(std::string id, std::string key,
                                                                    bool recorded);
    lease_info describe(const live_lease& lease) const;
    void add_deadline(std::chrono::system_clock::time_point when, deadline_kind kind,
                      const std::string& key);
    void remove_deadline(std::chrono::system_clock::time_point when, deadline_kind kind,
                         const std::string& key);
    boost::asio::awaitable<void> run_deadlines();
    void expire(deadline_kind kind, const std::string& key);
    boost::asio::awaitable<void> terminate_sessions(std::string database);
    [[noreturn]] void refuse_acquire(const template_entry& entry) const;

    boost::asio::any_io_executor executor_;
    backend_endpoint endpoint_;
    shard_config config_;
    broker_metrics& metrics_;

    std::optional<pg::connection> lock_connection_;
    std::unique_ptr<pg::connection_pool> operations_;
    std::unique_ptr<pg::connection_pool> catalog_;
    bool up_ = false;
    bool catalog_read_ = false;
    bool standby_ = false;
    bool stopping_ = false;
    /// Bumped whenever memory is thrown away (backend lost); suspended work checks it on resume.
    std::uint64_t generation_ = 0;

    std::map<std::string, template_entry> templates_;
    std::map<std::string, live_lease> leases_;
    std::map<std::string, template_pool*> kept_;
    std::set<deadline> deadlines_;
    boost::asio::system_timer deadline_timer_;
    boost::asio::steady_timer watch_timer_;
    std::deque<std::pair<template_pool*, std::string>> drop_queue_;
    std::vector<std::string> template_drop_queue_;
    int operations_in_flight_ = 0;
    int clone_failures_ = 0;
    std::chrono::steady_clock::time_point clones_paused_until_{};
    int background_tasks_ = 0;
    bool resume_scheduled_ = false;
    /// Directories left by interrupted CREATE DATABASE, as last seen; unknown when the admin
    /// may not read the data directory.
    std::optional<orphan_files> orphans_;
    bool orphan_check_refused_ = false;
};

}  // namespace pglease
