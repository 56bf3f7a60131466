#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_life.hpp"
#include "config/settings.hpp"

namespace pglease {

namespace pg {
class connection;
class connection_pool;
}  // namespace pg

/// Makes sure the backend's lease role exists with its password, and that an admin who is not a
/// superuser is a member of it and of every role `templates` hand out (to create databases they
/// own and run migrations as them). Roles the admin may not grant are logged, not fatal.
boost::asio::awaitable<void> ensure_lease_roles(
    pg::connection& conn, const backend_endpoint& endpoint,
    const std::map<std::string, template_settings>& templates);

/// With per-lease roles, drops the roles of leases that are over once their sessions are gone:
/// soon after a lease ends (one sweep for the ends that come close together, off the lease
/// path), and at each reconcile. The right to connect went already, in the transaction that
/// ended the lease.
class lease_role_sweeper {
  public:
    /// `live` names the roles that must stay (lease_desk::live_roles), read after the server
    /// listed the roles, so that a role committed meanwhile is known to be live.
    lease_role_sweeper(boost::asio::any_io_executor executor, const backend_endpoint& endpoint,
                       pg::connection_pool& connections, backend_life& life,
                       std::function<std::set<std::string>()> live);

    /// A lease's role is over: it is swept within half a second.
    void soon();
    /// Sweeps over `conn` now; returns how many roles went.
    boost::asio::awaitable<std::size_t> sweep(pg::connection& conn);

  private:
    boost::asio::awaitable<void> later();

    boost::asio::any_io_executor executor_;
    const backend_endpoint& endpoint_;
    pg::connection_pool& connections_;
    backend_life& life_;
    std::function<std::set<std::string>()> live_;
    bool pending_ = false;
};

}  // namespace pglease
