#include "embedded/data_dir.hpp"

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <system_error>
#include <unistd.h>

namespace pglease {

storage_probe probe_storage(const std::filesystem::path& path) {
    storage_probe probe;
    struct statfs fs {};
    struct statvfs vfs {};
    if (::statfs(path.c_str(), &fs) != 0 || ::statvfs(path.c_str(), &vfs) != 0) {
        return probe;
    }
    probe.exists = true;
    probe.ram_backed = fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
    probe.available_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    return probe;
}

data_dir_choice choose_data_dir(const std::optional<std::filesystem::path>& configured,
                                const std::filesystem::path& shm, const storage_probe& shm_probe,
                                uid_t uid, const std::filesystem::path& fallback) {
    if (configured) {
        return {*configured, false, "given as --data-dir"};
    }
    if (shm_probe.exists && shm_probe.ram_backed && shm_probe.available_bytes >= min_ram_bytes) {
        return {shm / ("pglease-" + std::to_string(uid)), true,
                "RAM-backed " + shm.string() + " has room"};
    }
    std::string why = !shm_probe.exists       ? shm.string() + " does not exist"
                      : !shm_probe.ram_backed ? shm.string() + " is not RAM-backed"
                                              : shm.string() + " has less than 512 MiB free";
    return {fallback, false, why + "; using disk"};
}

data_dir_lock::data_dir_lock(const std::filesystem::path& lock_file) {
    fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "open " + lock_file.string());
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        std::array<char, 32> holder{};
        const auto n = ::pread(fd_, holder.data(), holder.size() - 1, 0);
        ::close(fd_);
        fd_ = -1;
        if (error == EWOULDBLOCK) {
            std::string pid(holder.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) {
                pid.pop_back();
            }
            throw std::runtime_error("data directory " + lock_file.parent_path().string() +
                                     " is in use by another pgleased (pid " +
                                     (pid.empty() ? "unknown" : pid) +
                                     "); stop it or choose another --data-dir");
        }
        throw std::system_error(error, std::generic_category(), "flock " + lock_file.string());
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
        // The lock holds regardless; the pid is only for the message another instance prints.
    }
}

data_dir_lock::data_dir_lock(data_dir_lock&& other) noexcept : fd_(other.fd_) {
    other.fd_ = -1;
}

data_dir_lock::~data_dir_lock() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

}  // namespace pglease
