#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "process/os_user.hpp"

namespace pglease::test {

/// A fresh, empty directory for one e2e test, named for this process and `name`, open to all.
std::filesystem::path temp_dir(const std::string& name);

/// The port of the daemon's "http listening on 127.0.0.1:<port>" log line, or std::nullopt.
std::optional<std::uint16_t> http_port_in(const std::string& log);

/// A pgleased process with its stdout and stderr in a file; killed (SIGKILL) when destroyed
/// unless it already exited.
class daemon_process {
  public:
    /// Starts `program` with `args`, optionally as another user (needs root).
    daemon_process(const std::filesystem::path& program, std::vector<std::string> args,
                   const std::filesystem::path& log,
                   const std::optional<os_user>& as_user = std::nullopt);
    daemon_process(const daemon_process&) = delete;
    daemon_process& operator=(const daemon_process&) = delete;
    ~daemon_process();

    /// The process id.
    pid_t pid() const noexcept { return pid_; }
    /// Everything the process wrote so far.
    std::string log() const;

    /// Waits until the log contains `text`; false if the process exited or time ran out first.
    bool wait_for_log(const std::string& text,
                      std::chrono::seconds limit = std::chrono::seconds(90));

    /// True once the process has exited (reaps it).
    bool exited();

    /// The exit code once it exits within `limit` (-signal if killed), or std::nullopt.
    std::optional<int> wait_exit(std::chrono::seconds limit = std::chrono::seconds(60));

  private:
    std::filesystem::path log_;
    pid_t pid_ = 0;
    std::optional<int> exit_status_;
};

}  // namespace pglease::test
