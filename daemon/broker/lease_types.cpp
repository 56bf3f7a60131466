#include "broker/lease_types.hpp"

#include <cctype>

#include "leases/lease_id.hpp"

namespace pglease {
namespace {

std::string uri_encoded(const std::string& text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

}  // namespace

void lease_info::identify(std::string lease_id) {
    if (own_role) {
        password = lease_role_password(lease_id);
    }
    id = std::move(lease_id);
}

std::string lease_info::dsn() const {
    // A unix socket directory goes in the query, since a path cannot be a URI host.
    const bool socket = host.starts_with('/');
    std::string uri = "postgresql://" + uri_encoded(user);
    if (!password.empty()) {
        uri += ":" + uri_encoded(password);
    }
    uri += "@" + (socket ? std::string() : host) + ":" + std::to_string(port) + "/" +
           uri_encoded(database);
    if (socket) {
        uri += "?host=" + uri_encoded(host);
    }
    return uri;
}

std::string build_info::dsn() const {
    lease_info as_lease;
    as_lease.user = user;
    as_lease.password = password;
    as_lease.host = host;
    as_lease.port = port;
    as_lease.database = database;
    return as_lease.dsn();
}

}  // namespace pglease
