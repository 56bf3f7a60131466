#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace pglease {

class embedded_cluster;
struct backend_settings;

/// How the broker reaches one backend, and the credentials it hands to workers there.
struct backend_endpoint {
    std::string name;
    /// An admin role with CREATEDB (and CREATEROLE) on the maintenance database.
    std::string admin_conninfo;
    /// What workers connect to.
    std::string worker_host;
    std::uint16_t worker_port = 5432;
    std::string lease_role;
    std::string lease_password;
    /// True when pglease made the password (random): it is then stored as a SCRAM secret with
    /// few iterations, which makes every worker's login about 8 ms cheaper.
    bool lease_password_generated = false;
    /// With per-lease roles: each lease gets a LOGIN role of its own, named this prefix and 24
    /// hex characters of the lease's key, the only role that may connect to its clone (see
    /// pool/lease_access.hpp). Empty: every lease hands out lease_role.
    std::string lease_role_prefix;
    int max_parallel_clones = 2;
    int max_databases = 200;
    /// The embedded cluster's PGDATA: its orphaned files may be removed by reconciliation.
    std::optional<std::filesystem::path> pgdata;
};

/// The endpoint of the embedded cluster. The lease role's password is kept in the cluster's
/// directory (made on first use) so that leases survive a restart.
backend_endpoint embedded_endpoint(const embedded_cluster& cluster, int max_parallel_clones,
                                   int max_databases);

/// The endpoint of a configured backend; workers connect to the host and port of its URL.
/// Without a lease_password, one is generated once and kept in
/// `state_dir` (lease-role-<backend>.password), and set on the lease role at each start.
backend_endpoint configured_endpoint(const backend_settings& backend,
                                     const std::filesystem::path& state_dir);

}  // namespace pglease
