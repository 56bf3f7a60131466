#include "process/child_process.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <system_error>
#include <unistd.h>

#include <boost/asio/connect_pipe.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/writable_pipe.hpp>

#include "process/boost_process.hpp"

extern char** environ;

namespace pglease {
namespace {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using namespace asio::experimental::awaitable_operators;

// Output kept of a finished command: enough for a migration tool's error, bounded for a chatty one.
constexpr std::size_t max_output = std::size_t{64} * 1024;

// Runs in the forked child before exec: own process group, then the unprivileged identity, then
// the parent-death signal (a change of identity clears it, so it must come last).
struct child_setup {
    std::optional<os_user> run_as;
    int parent_death_signal = 0;
    pid_t parent = ::getpid();
    bool own_process_group = false;

    template <typename Launcher>
    boost::system::error_code on_exec_setup(Launcher& /*launcher*/,
                                            const bp::filesystem::path& /*program*/,
                                            const char* const*(&/*argv*/)) const {
        const auto failed = [] {
            return boost::system::error_code(errno, boost::system::system_category());
        };
        if (own_process_group && ::setpgid(0, 0) != 0) {
            return failed();
        }
        if (run_as) {
            const gid_t group = run_as->gid;
            if (::setgroups(1, &group) != 0 || ::setgid(group) != 0 || ::setuid(run_as->uid) != 0) {
                return failed();
            }
        }
        if (parent_death_signal != 0) {
            if (::prctl(PR_SET_PDEATHSIG, parent_death_signal) != 0) {
                return failed();
            }
            if (::getppid() != parent) {
                // The parent died before the signal was armed.
                errno = ESRCH;
                return failed();
            }
        }
        return {};
    }
};

std::vector<std::string> child_environment(const child_options& options) {
    std::vector<std::string> env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string_view text(*entry);
        const auto name = text.substr(0, text.find('='));
        bool replaced = false;
        for (const auto& [key, value] : options.environment) {
            replaced = replaced || key == name;
        }
        if (!replaced) {
            env.emplace_back(text);
        }
    }
    for (const auto& [key, value] : options.environment) {
        env.push_back(key + "=" + value);
    }
    return env;
}

child_setup setup_for(const child_options& options, bool own_group) {
    child_setup setup;
    setup.run_as = running_as_root() ? options.run_as : std::nullopt;
    setup.parent_death_signal = options.parent_death_signal;
    setup.own_process_group = own_group;
    return setup;
}

bp::filesystem::path start_dir(const child_options& options) {
    return options.working_dir.empty() ? std::filesystem::current_path() : options.working_dir;
}

// Starts a process, turning Boost's launch error into one that names the program.
template <typename... Inits>
bp::process launch(const asio::any_io_executor& executor, const std::filesystem::path& program,
                   const std::vector<std::string>& args, Inits&&... inits) {
    try {
        return bp::process(executor, program, args, std::forward<Inits>(inits)...);
    } catch (const boost::system::system_error& e) {
        throw std::system_error(e.code().value(), std::generic_category(),
                                "cannot start " + program.string());
    }
}

}  // namespace

asio::awaitable<command_result> run_command(std::filesystem::path program,
                                            std::vector<std::string> args, child_options options,
                                            std::chrono::milliseconds timeout) {
    auto executor = co_await asio::this_coro::executor;
    asio::readable_pipe output(executor);
    asio::writable_pipe child_end(executor);
    asio::connect_pipe(output, child_end);

    bp::process child =
        launch(executor, program, args, bp::process_stdio{nullptr, child_end, child_end},
               bp::process_start_dir{start_dir(options)},
               bp::process_environment{child_environment(options)}, setup_for(options, true));
    child_end.close();
    const int pid = child.id();

    command_result outcome;
    auto read_and_wait = [&]() -> asio::awaitable<int> {
        std::array<char, 4096> chunk{};
        for (;;) {
            boost::system::error_code ec;
            const std::size_t n = co_await output.async_read_some(
                asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                break;  // end of file: the child and everything it started closed the pipe
            }
            outcome.output.append(chunk.data(), n);
            if (outcome.output.size() > 2 * max_output) {
                outcome.output.erase(0, outcome.output.size() - max_output);
            }
        }
        co_return co_await child.async_wait(asio::use_awaitable);
    };
    asio::steady_timer timer(executor, timeout);
    auto finished = co_await (read_and_wait() || timer.async_wait(asio::use_awaitable));
    if (finished.index() == 1) {
        ::kill(-pid, SIGKILL);
        boost::system::error_code ignored;
        child.terminate(ignored);
        throw command_timeout(program.filename().string() + " ran longer than " +
                              std::to_string(timeout.count()) + " ms and was killed");
    }
    outcome.exit_code = std::get<0>(finished);
    if (outcome.output.size() > max_output) {
        outcome.output.erase(0, outcome.output.size() - max_output);
    }
    co_return outcome;
}

struct server_process::state {
    bp::process process;
    std::optional<int> exit_code;
};

server_process::server_process(const asio::any_io_executor& executor,
                               const std::filesystem::path& program,
                               const std::vector<std::string>& args,
                               const std::filesystem::path& log_file,
                               const child_options& options) {
    const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0) {
        throw std::system_error(errno, std::generic_category(), "open " + log_file.string());
    }
    try {
        state_ = std::make_unique<state>(state{
            launch(executor, program, args, bp::process_stdio{nullptr, log_fd, log_fd},
                   bp::process_start_dir{start_dir(options)},
                   bp::process_environment{child_environment(options)}, setup_for(options, false)),
            std::nullopt});
    } catch (...) {
        ::close(log_fd);
        throw;
    }
    ::close(log_fd);
}

server_process::server_process(server_process&&) noexcept = default;
server_process& server_process::operator=(server_process&&) noexcept = default;
server_process::~server_process() = default;

int server_process::pid() const noexcept {
    return state_ ? state_->process.id() : 0;
}

bool server_process::running() {
    if (!state_ || state_->exit_code) {
        return false;
    }
    boost::system::error_code ec;
    if (state_->process.running(ec)) {
        return true;
    }
    // Reaped now (or by someone else: ECHILD); remember it so later waits do not wait again.
    state_->exit_code = ec ? -1 : state_->process.exit_code();
    return false;
}

void server_process::send_signal(int signal) noexcept {
    if (state_ && running()) {
        ::kill(state_->process.id(), signal);
    }
}

asio::awaitable<std::optional<int>> server_process::wait_exit(std::chrono::milliseconds timeout) {
    if (!state_) {
        co_return std::nullopt;
    }
    if (!running()) {
        co_return state_->exit_code;
    }
    asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
    boost::system::error_code ec;
    auto finished =
        co_await (state_->process.async_wait(asio::redirect_error(asio::use_awaitable, ec)) ||
                  timer.async_wait(asio::use_awaitable));
    if (finished.index() == 1) {
        co_return std::nullopt;
    }
    state_->exit_code = ec ? -1 : std::get<0>(finished);
    co_return state_->exit_code;
}

void server_process::detach() noexcept {
    if (state_) {
        state_->process.detach();
    }
}

}  // namespace pglease
