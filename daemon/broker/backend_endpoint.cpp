#include "broker/backend_endpoint.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <system_error>
#include <unistd.h>

#include "config/settings.hpp"
#include "embedded/embedded_cluster.hpp"
#include "leases/lease_id.hpp"
#include "pg/conninfo.hpp"

namespace pglease {
namespace {

namespace fs = std::filesystem;

std::string stored_password(const fs::path& file) {
    {
        std::ifstream in(file);
        std::string existing;
        if (in && std::getline(in, existing) && !existing.empty()) {
            return existing;
        }
    }
    std::string password = new_lease_id() + new_lease_id();
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "create " + file.string());
    }
    const std::string line = password + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!written) {
        throw std::system_error(errno, std::generic_category(), "write " + file.string());
    }
    return password;
}

}  // namespace

backend_endpoint embedded_endpoint(const embedded_cluster& cluster, int max_parallel_clones,
                                   int max_databases) {
    backend_endpoint endpoint;
    endpoint.name = "embedded";
    endpoint.admin_conninfo = cluster.admin_conninfo("postgres");
    endpoint.worker_host = "127.0.0.1";
    endpoint.worker_port = cluster.port();
    endpoint.lease_role = "pglease_worker";
    endpoint.lease_password = stored_password(cluster.data_dir() / "lease-role.password");
    endpoint.lease_password_generated = true;
    endpoint.max_parallel_clones = max_parallel_clones;
    endpoint.max_databases = max_databases;
    endpoint.pgdata = cluster.pgdata();
    return endpoint;
}

backend_endpoint configured_endpoint(const backend_settings& backend, const fs::path& state_dir) {
    backend_endpoint endpoint;
    endpoint.name = backend.name;
    endpoint.admin_conninfo = backend.url;
    const auto options = pg::parse_conninfo(backend.url);
    const auto host = options.find("host");
    const auto hostaddr = options.find("hostaddr");
    endpoint.worker_host = host != options.end()       ? host->second
                           : hostaddr != options.end() ? hostaddr->second
                                                       : "localhost";
    if (const auto port = options.find("port"); port != options.end()) {
        endpoint.worker_port = static_cast<std::uint16_t>(std::stoi(port->second));
    }
    endpoint.lease_role = backend.lease_role;
    endpoint.lease_password = backend.lease_password;
    if (endpoint.lease_password.empty()) {
        fs::create_directories(state_dir);
        endpoint.lease_password =
            stored_password(state_dir / ("lease-role-" + backend.name + ".password"));
        endpoint.lease_password_generated = true;
    }
    endpoint.max_parallel_clones = backend.max_parallel_clones;
    endpoint.max_databases = backend.max_databases;
    return endpoint;
}

}  // namespace pglease
