#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

namespace pglease {

/// Settings of the private PostgreSQL cluster the daemon (and the tests) start.
struct embedded_cluster_options {
    /// Where the cluster lives; std::nullopt picks RAM-backed storage when there is room.
    std::optional<std::filesystem::path> data_dir;
    /// TCP port on 127.0.0.1; std::nullopt picks a free one.
    std::optional<std::uint16_t> port;
    /// OS account that runs PostgreSQL when this process runs as root.
    std::string run_as = "postgres";
    /// Directory of postgres/initdb; std::nullopt searches for them.
    std::optional<std::filesystem::path> bin_dir;
    /// The server's max_connections.
    int max_connections = 300;
    /// How long initdb plus startup may take.
    std::chrono::seconds start_timeout{120};
};

/// A running private PostgreSQL cluster: initdb'd on first use, started on a unix socket in a
/// directory of its own and on 127.0.0.1, with settings for throwaway data (fsync=off, ...).
class embedded_cluster {
  public:
    /// The superuser initdb creates; it may connect only over the private unix socket.
    static constexpr const char* superuser = "postgres";

    /// Starts the cluster (initdb first when the data directory has none). Throws
    /// std::runtime_error with a message that says what to do when it cannot.
    static boost::asio::awaitable<std::unique_ptr<embedded_cluster>> start(
        embedded_cluster_options options);

    embedded_cluster(const embedded_cluster&) = delete;
    embedded_cluster& operator=(const embedded_cluster&) = delete;
    /// Stops the server immediately if stop() was not awaited.
    ~embedded_cluster();

    /// Shuts the server down (fast, then immediate, then kill) and waits for it to exit.
    boost::asio::awaitable<void> stop();

    /// The directory that holds everything (pgdata/, run/, postgres.log, the lock).
    const std::filesystem::path& data_dir() const noexcept;
    /// PostgreSQL's data directory (PGDATA).
    std::filesystem::path pgdata() const;
    /// Directory of the unix socket.
    const std::filesystem::path& socket_dir() const noexcept;
    /// TCP port (also the socket's port number).
    std::uint16_t port() const noexcept;
    /// True when the data directory is on RAM-backed storage.
    bool ram_backed() const noexcept;
    /// Server version, e.g. "15.18".
    const std::string& version() const noexcept;
    /// Process id of the postmaster.
    int postmaster_pid() const noexcept;
    /// Connection string for the superuser over the unix socket to `database`.
    std::string admin_conninfo(const std::string& database = "postgres") const;

  private:
    struct state;
    explicit embedded_cluster(std::unique_ptr<state> s) noexcept;
    std::unique_ptr<state> state_;
};

}  // namespace pglease
