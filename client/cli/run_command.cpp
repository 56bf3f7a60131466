#include "run_command.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <sys/wait.h>
#include <unistd.h>

#include "exit_codes.hpp"

namespace pglease::cli {

namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

// How long a command has to exit after a forwarded signal before it is killed.
constexpr seconds kill_after{10};

std::string format_duration(seconds s) {
    const auto n = s.count();
    if (n % 3600 == 0) {
        return std::to_string(n / 3600) + "h";
    }
    if (n % 60 == 0) {
        return std::to_string(n / 60) + "m";
    }
    return std::to_string(n) + "s";
}

[[noreturn]] void exec_child(const std::vector<std::string>& command, const sigset_t& original,
                             const client::lease_data& lease) {
    sigprocmask(SIG_SETMASK, &original, nullptr);
    setenv("DATABASE_URL", lease.dsn.c_str(), 1);
    setenv("PGHOST", lease.host.c_str(), 1);
    setenv("PGPORT", std::to_string(lease.port).c_str(), 1);
    setenv("PGUSER", lease.user.c_str(), 1);
    setenv("PGPASSWORD", lease.password.c_str(), 1);
    setenv("PGDATABASE", lease.database.c_str(), 1);
    setenv("PGLEASE_ID", lease.id.c_str(), 1);
    std::vector<char*> argv;
    argv.reserve(command.size() + 1);
    for (const auto& arg : command) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    const int failure = errno;
    std::cerr << "pglease: cannot execute " << command[0] << ": " << std::strerror(failure)
              << std::endl;
    _exit(failure == ENOENT ? 127 : 126);
}

}  // namespace

int run_command(client::client& server, const run_options& options) {
    const client::lease_data lease = server.acquire(options.template_name, options.lease);

    // The signals are taken synchronously (sigtimedwait), so the loop can also renew on time.
    sigset_t handled;
    sigemptyset(&handled);
    for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) {
        sigaddset(&handled, s);
    }
    sigset_t original;
    sigprocmask(SIG_BLOCK, &handled, &original);

    const pid_t child = fork();
    if (child < 0) {
        const int failure = errno;
        server.release(lease.id, client::release_mode::reuse);
        sigprocmask(SIG_SETMASK, &original, nullptr);
        std::cerr << "pglease: cannot start a process: " << std::strerror(failure) << std::endl;
        return cannot_execute;
    }
    if (child == 0) {
        exec_child(options.command, original, lease);
    }

    const auto ttl =
        std::chrono::duration_cast<seconds>(lease.expires_at - std::chrono::system_clock::now());
    const auto renew_every = std::max(seconds(1), ttl / 3);
    auto next_renewal = steady_clock::now() + renew_every;
    std::optional<steady_clock::time_point> kill_at;
    int status = 0;
    for (;;) {
        const pid_t done = waitpid(child, &status, WNOHANG);
        if (done == child) {
            break;
        }
        auto wake = next_renewal;
        if (kill_at && *kill_at < wake) {
            wake = *kill_at;
        }
        const auto left = std::max(steady_clock::duration::zero(), wake - steady_clock::now());
        const auto left_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        timespec timeout{static_cast<time_t>(left_ns / 1'000'000'000),
                         static_cast<long>(left_ns % 1'000'000'000)};
        const int signal = sigtimedwait(&handled, nullptr, &timeout);
        if (signal == SIGINT || signal == SIGTERM || signal == SIGHUP) {
            kill(child, signal);
            if (!kill_at) {
                kill_at = steady_clock::now() + kill_after;
            }
            continue;
        }
        const auto now = steady_clock::now();
        if (kill_at && now >= *kill_at) {
            kill(child, SIGKILL);
            kill_at = now + std::chrono::hours(24);
        }
        if (now >= next_renewal) {
            try {
                server.renew(lease.id, options.lease.ttl);
            } catch (const client::error& e) {
                std::cerr << "pglease: cannot renew the lease: " << e.what() << std::endl;
            }
            next_renewal = now + renew_every;
        }
    }
    sigprocmask(SIG_SETMASK, &original, nullptr);

    const bool succeeded = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const int exit_status = WIFEXITED(status)     ? WEXITSTATUS(status)
                            : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                                  : 1;
    try {
        if (succeeded) {
            server.release(lease.id, options.on_success);
        } else if (options.keep_on_failure) {
            server.release(lease.id, client::release_mode::keep, options.keep_on_failure);
            std::cerr << "pglease: kept database " << lease.database << " for "
                      << format_duration(*options.keep_on_failure) << ": " << lease.dsn
                      << std::endl;
        } else {
            server.release(lease.id, client::release_mode::recycle);
        }
    } catch (const client::error& e) {
        std::cerr << "pglease: cannot release the lease (it expires at its TTL): " << e.what()
                  << std::endl;
    }
    return exit_status;
}

}  // namespace pglease::cli
