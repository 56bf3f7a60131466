#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "templates/template_state.hpp"

namespace pglease {

/// How a released clone is treated.
enum class release_mode {
    recycle,  // drop it and clone a replacement
    reuse,    // the worker wrote nothing: back to idle at once
    keep,     // keep it for inspection for a while, then drop it
};

/// What a worker asks for when it acquires.
struct acquire_request {
    std::optional<std::chrono::seconds> ttl;   // default: the template's lease.ttl
    std::optional<std::chrono::seconds> wait;  // default: the template's lease.wait
    std::string owner;
    std::map<std::string, std::string> labels;
    /// The version to lease, by fingerprint; empty: the template's newest.
    std::string fingerprint;
};

/// Everything a worker needs to use its clone, and what the broker knows of the lease.
struct lease_info {
    std::string id;  // only known right after acquire; later lookups carry the key only
    std::string key;
    std::string template_name;
    std::string fingerprint;
    std::string database;
    std::string host;
    std::uint16_t port = 0;
    std::string user;
    std::string password;
    std::string owner;
    std::map<std::string, std::string> labels;
    std::chrono::system_clock::time_point acquired_at;
    std::chrono::system_clock::time_point expires_at;
    std::string backend;
    /// The user is the lease's own role, whose password comes from the id (see identify).
    bool own_role = false;

    /// Sets the id, which the caller proved it holds, and what only the id gives: the password
    /// of the lease's own role.
    void identify(std::string lease_id);
    /// postgresql://user:password@host:port/database
    std::string dsn() const;
};

/// Counts of one template's pool (current version, all backends), for status and metrics.
struct pool_counts {
    std::size_t idle = 0;
    std::size_t leased = 0;
    std::size_t creating = 0;
    std::size_t dropping = 0;
    std::size_t kept = 0;
    std::size_t resetting = 0;
    std::size_t waiters = 0;
    int min_idle = 0;
    int max_total = 0;
    /// How a released clone is made fresh: "reset" (in place) or "reclone".
    std::string recycle = "reset";
};

/// A lease whose database was made fresh again: in place ("reset"), or cloned again under its
/// name ("reclone", its sessions ended), and why.
struct reset_answer {
    lease_info lease;
    std::string result;
    std::string reason;
};

/// A template as the broker sees it.
struct template_status {
    std::string name;
    std::string source;       // migrations, database, command, client
    std::string fingerprint;  // of the version leases get now (empty while none is ready)
    template_state state = template_state::building;
    std::string error;  // the last build failure, when failed
    pool_counts pool;
    /// The fingerprints of the versions that serve leases, the newest first (a
    /// client-initialized template keeps older ones side by side).
    std::vector<std::string> versions;
    /// The bounds a lease request is checked against.
    std::chrono::seconds max_ttl{0};
    std::chrono::seconds max_wait{0};
    std::chrono::seconds max_keep{0};
};

/// Directories in a backend's data directory that no database owns (left by interrupted
/// CREATE DATABASE), with what they hold.
struct orphan_files {
    std::size_t directories = 0;
    std::size_t files = 0;
    std::uint64_t bytes = 0;
    /// Their paths in the data directory (base/<oid>).
    std::vector<std::string> names;
};

/// A backend as the broker sees it.
struct backend_status {
    std::string name;
    bool up = false;
    /// Open admin connections (the lock session and the pools).
    std::size_t admin_connections = 0;
    /// Databases pglease manages there (templates and clones, any state).
    std::size_t databases = 0;
    int max_databases = 0;
    /// CREATE and DROP DATABASE running now.
    int operations_in_progress = 0;
    int max_parallel_clones = 0;
    /// As found at the last reconcile; std::nullopt when the admin may not look.
    std::optional<orphan_files> orphans;
};

/// The right to build a client-initialized template version: where and until when.
struct build_info {
    std::string id;  // the build lease id, needed to finalize or abort
    std::string template_name;
    std::string fingerprint;  // as the client gave it
    std::string database;
    std::string host;
    std::uint16_t port = 0;
    std::string user;
    std::string password;
    std::chrono::system_clock::time_point expires_at;

    /// postgresql://user:password@host:port/database
    std::string dsn() const;
};

/// The answer to "ensure this client-initialized template": ready, or yours to build.
struct client_template_outcome {
    bool ready = false;
    template_status status;
    std::optional<build_info> build;
};

}  // namespace pglease
