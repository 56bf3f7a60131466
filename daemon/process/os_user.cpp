#include "process/os_user.hpp"

#include <cerrno>
#include <pwd.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace pglease {

std::optional<os_user> find_os_user(const std::string& name) {
    std::vector<char> buffer(std::size_t{16} * 1024);
    passwd entry{};
    passwd* found = nullptr;
    const int rc = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc != 0) {
        throw std::system_error(rc, std::generic_category(), "getpwnam_r(" + name + ")");
    }
    if (found == nullptr) {
        return std::nullopt;
    }
    return os_user{found->pw_name, found->pw_uid, found->pw_gid};
}

bool running_as_root() noexcept {
    return geteuid() == 0;
}

void give_to_user(const std::filesystem::path& path, const std::optional<os_user>& user) {
    if (!user || !running_as_root()) {
        return;
    }
    if (::chown(path.c_str(), user->uid, user->gid) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "chown " + path.string() + " to " + user->name);
    }
}

}  // namespace pglease
