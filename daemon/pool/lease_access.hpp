#pragma once

// Who may connect to a clone. By default every lease hands out the backend's lease role, which
// owns the clones. With per-lease roles each lease gets a LOGIN role of its own, the only one
// that may connect to its clone:
// - the admin owns clones and templates, so no lease role can change who may connect to them
//   (a database's owner, and through membership every member of the owner, can);
// - PUBLIC may not connect to a clone; the lease's role may, granted with the lease in the
//   lease's catalog transaction and taken away in the release's;
// - the lease's role is NOINHERIT and a member of the lease role, which its sessions become at
//   login (ALTER ROLE … SET role): objects stay the lease role's, which may create in the clone
//   and in its public schema, while the right to connect is the lease's own;
// - templates do not accept connections once built;
// - a role whose lease is over goes once its sessions are gone (lease_role_sweeper, in
//   broker/lease_roles.hpp), or with its clone when the clone is dropped (an expired lease's,
//   a kept clone's).

#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

namespace pglease {

namespace pg {
class connection;
}
struct backend_endpoint;
struct template_entry;

/// The prefix of per-lease roles next to databases named with `database_prefix`.
std::string lease_role_prefix(std::string_view database_prefix);

/// The role of the lease stored under `key`: `prefix` and the key's first 24 hex characters.
std::string lease_role_name(std::string_view prefix, std::string_view key);

/// The role of the lease stored under `key` on `endpoint`; "" without per-lease roles.
std::string per_lease_role(const backend_endpoint& endpoint, std::string_view key);

/// How a clone is reached.
struct clone_access {
    /// The role that owns the clone's objects (and, without per_lease, the clone).
    std::string lease_role;
    bool per_lease = false;
    /// With per_lease: the role that may connect ("" while no lease holds the clone).
    std::string connect_role;
};

/// How the clones of `entry` (nullptr: a template no longer configured) are reached on
/// `endpoint`, `connect_role` being the lease's role with per-lease roles.
clone_access access_of(const template_entry* entry, const backend_endpoint& endpoint,
                       std::string connect_role = "");

/// With access.per_lease, the statements (in the transaction that opens a clone created with
/// ALLOW_CONNECTIONS false) that leave `database` reachable as `access` says, then open it.
/// Nothing without per_lease.
std::string open_database_sql(const pg::connection& conn, const std::string& database,
                              const clone_access& access);

/// The statements that make `role` (a lease's, with `password`), a NOINHERIT member of
/// `lease_role` that becomes it at login, with the admin as its member (to end its sessions),
/// and let it connect to `database`.
std::string create_lease_role_sql(const pg::connection& conn, const std::string& role,
                                  const std::string& password, const std::string& lease_role,
                                  const std::string& database);

/// The statement that takes from a live lease's `role`, in the transaction that ends the lease,
/// its right to connect to `database` (the only one it was given). The role itself is dropped
/// once its sessions are gone (drop_lease_role_sql): the admin may end a session only while it
/// is a member of the session's role.
std::string revoke_lease_role_sql(const pg::connection& conn, const std::string& role,
                                  const std::string& database);

/// The statements that take from `role` the right to connect to every database, then drop it;
/// harmless when it is gone. A role that still owns something, or holds a privilege inside a
/// database, stays (without any right to connect) until a later sweep_lease_roles.
std::string drop_lease_role_sql(const pg::connection& conn, const std::string& role);

/// An SQL condition on a pg_database row: its owner and privileges are those `access` gives.
std::string privileges_as_given_sql(const pg::connection& conn, const clone_access& access);

/// Drops the roles named `prefix` + 24 hex characters that have no session, but those `live`
/// names (asked once the server listed them); returns how many went.
boost::asio::awaitable<std::size_t> sweep_lease_roles(pg::connection& conn, std::string prefix,
                                                      std::function<std::set<std::string>()> live);

}  // namespace pglease
