#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>

namespace pglease {

/// An operating-system account a child process can run as.
struct os_user {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};

/// Looks up `name` in the password database; std::nullopt when there is no such user.
std::optional<os_user> find_os_user(const std::string& name);

/// True when this process runs with effective uid 0.
bool running_as_root() noexcept;

/// Gives `path` (not recursively) to `user` when running as root; a no-op otherwise.
void give_to_user(const std::filesystem::path& path, const std::optional<os_user>& user);

}  // namespace pglease
