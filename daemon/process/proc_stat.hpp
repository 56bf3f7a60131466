#pragma once

#include <optional>
#include <string>

namespace pglease {

/// What /proc/<pid>/stat says of a process: CPU time and start in clock ticks, memory.
struct proc_stat {
    double utime_ticks = 0;
    double stime_ticks = 0;
    double start_ticks = 0;
    double virtual_bytes = 0;
    double resident_pages = 0;
};

/// Reads /proc/<pid>/stat ("self" for this process); std::nullopt when the process is gone or
/// the file cannot be parsed.
std::optional<proc_stat> read_proc_stat(const std::string& pid = "self");

}  // namespace pglease
