#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "process/os_user.hpp"

namespace pglease {

/// How to start a child process.
struct child_options {
    /// Directory the child starts in; the parent's when empty.
    std::filesystem::path working_dir;
    /// Account the child runs as (needs root); the parent's when empty.
    std::optional<os_user> run_as;
    /// Variables set (or replaced) on top of the parent's environment.
    std::vector<std::pair<std::string, std::string>> environment;
    /// Signal the kernel sends the child when this process dies (0: none).
    int parent_death_signal = 0;
};

/// What a finished command printed and how it ended.
struct command_result {
    int exit_code = 0;
    /// stdout and stderr interleaved, cut to the last `max_output` bytes.
    std::string output;
};

/// Runs `program` with `args` to completion without blocking the loop, capturing its output.
/// Throws std::system_error when it cannot start, pglease::command_timeout when it runs past
/// `timeout` (it is killed).
boost::asio::awaitable<command_result> run_command(std::filesystem::path program,
                                                   std::vector<std::string> args,
                                                   child_options options,
                                                   std::chrono::milliseconds timeout);

/// A command ran past its time limit and was killed.
class command_timeout : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// A long-running child (a database server) whose output goes to a file.
class server_process {
  public:
    /// Starts `program`; its stdout and stderr are appended to `log_file`.
    server_process(const boost::asio::any_io_executor& executor,
                   const std::filesystem::path& program, const std::vector<std::string>& args,
                   const std::filesystem::path& log_file, const child_options& options);
    server_process(server_process&&) noexcept;
    server_process& operator=(server_process&&) noexcept;
    ~server_process();

    /// Process id of the child.
    int pid() const noexcept;
    /// True until the child has exited.
    bool running();
    /// Sends `signal` to the child if it still runs.
    void send_signal(int signal) noexcept;
    /// Waits up to `timeout` for the child to exit; its exit code, or std::nullopt if it still
    /// runs.
    boost::asio::awaitable<std::optional<int>> wait_exit(std::chrono::milliseconds timeout);
    /// Leaves the child running when this object goes away.
    void detach() noexcept;

  private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace pglease
