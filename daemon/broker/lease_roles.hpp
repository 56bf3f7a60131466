#pragma once

#include <map>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "config/settings.hpp"

namespace pglease {

namespace pg {
class connection;
}

/// Makes sure the backend's lease role exists with its password, and that an admin who is not a
/// superuser is a member of it and of every role `templates` hand out (to create databases they
/// own and run migrations as them). Roles the admin may not grant are logged, not fatal.
boost::asio::awaitable<void> ensure_lease_roles(
    pg::connection& conn, const backend_endpoint& endpoint,
    const std::map<std::string, template_settings>& templates);

}  // namespace pglease
