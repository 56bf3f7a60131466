#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

namespace pglease {

/// The PostgreSQL server programs (postgres, initdb) the embedded cluster runs.
struct server_binaries {
    std::filesystem::path bin_dir;
    /// As `postgres --version` prints it, e.g. "15.18".
    std::string version;
    /// The major version, e.g. 15.
    int major_version = 0;

    std::filesystem::path postgres() const { return bin_dir / "postgres"; }
    std::filesystem::path initdb() const { return bin_dir / "initdb"; }
};

/// True when `dir` holds executable `postgres` and `initdb`.
bool holds_server_binaries(const std::filesystem::path& dir);

/// The `<root>/<version>/bin` with server binaries and the highest version, e.g. under
/// /usr/lib/postgresql; std::nullopt when there is none.
std::optional<std::filesystem::path> newest_versioned_bin_dir(const std::filesystem::path& root);

/// The major version in `postgres --version` output ("postgres (PostgreSQL) 15.18 (Debian ...)").
std::optional<std::pair<std::string, int>> parse_server_version(const std::string& output);

/// Finds the server binaries: `configured` if given, else `pg_config --bindir`, else the newest
/// /usr/lib/postgresql/*/bin. Throws std::runtime_error saying where it looked.
boost::asio::awaitable<server_binaries> find_server_binaries(
    std::optional<std::filesystem::path> configured);

}  // namespace pglease
