#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>

namespace pglease {

/// What a storage location offers, as statfs/statvfs see it.
struct storage_probe {
    bool exists = false;
    bool ram_backed = false;
    std::uint64_t available_bytes = 0;
};

/// Looks at `path` with statfs/statvfs.
storage_probe probe_storage(const std::filesystem::path& path);

/// Where the embedded cluster keeps its files, and why.
struct data_dir_choice {
    std::filesystem::path path;
    bool ram_backed = false;
    std::string reason;
};

/// Below this, RAM-backed storage is not used by default (a container's 64 MB /dev/shm).
inline constexpr std::uint64_t min_ram_bytes = 512ull * 1024 * 1024;

/// The data directory: `configured` when given (on disk), else a per-user directory on RAM-backed
/// `shm` when it exists and has room, else `fallback` (relative to the working directory).
data_dir_choice choose_data_dir(const std::optional<std::filesystem::path>& configured,
                                const std::filesystem::path& shm, const storage_probe& shm_probe,
                                uid_t uid, const std::filesystem::path& fallback);

/// An exclusive lock on a data directory, held while this object lives, so that two daemons
/// never run one cluster. The lock file records the holder's pid.
class data_dir_lock {
  public:
    /// Takes the lock or throws std::runtime_error naming the pid that holds it.
    explicit data_dir_lock(const std::filesystem::path& lock_file);
    data_dir_lock(data_dir_lock&& other) noexcept;
    data_dir_lock& operator=(data_dir_lock&&) = delete;
    data_dir_lock(const data_dir_lock&) = delete;
    data_dir_lock& operator=(const data_dir_lock&) = delete;
    ~data_dir_lock();

  private:
    int fd_ = -1;
};

}  // namespace pglease
