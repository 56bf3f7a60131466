#include "support/daemon_process.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <iterator>
#include <regex>
#include <signal.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace pglease::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

namespace {

std::string slurp(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

fs::path temp_dir(const std::string& name) {
    fs::path dir =
        fs::temp_directory_path() / ("pglease-e2e-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    // The daemon may run as another user (and as root, its cluster does): let them in.
    fs::permissions(dir, fs::perms::all);
    return dir;
}

std::optional<std::uint16_t> http_port_in(const std::string& log) {
    static const std::regex listening(R"(http listening on 127\.0\.0\.1:(\d{1,5})\b)");
    std::smatch match;
    if (!std::regex_search(log, match, listening)) {
        return std::nullopt;
    }
    const unsigned long port = std::stoul(match[1]);
    if (port == 0 || port > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(port);
}

daemon_process::daemon_process(const fs::path& program, std::vector<std::string> args,
                               const fs::path& log, const std::optional<os_user>& as_user)
    : log_(log) {
    std::vector<std::string> argv{program.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    raw.reserve(argv.size() + 1);
    for (auto& arg : argv) {
        raw.push_back(arg.data());
    }
    raw.push_back(nullptr);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "open " + log.string());
    }
    pid_ = ::fork();
    if (pid_ == 0) {
        // The child: only async-signal-safe calls until exec.
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        if (as_user) {
            const gid_t group = as_user->gid;
            if (::setgroups(1, &group) != 0 || ::setgid(group) != 0 ||
                ::setuid(as_user->uid) != 0) {
                ::_exit(126);
            }
        }
        ::execve(raw[0], raw.data(), environ);
        ::_exit(127);
    }
    ::close(fd);
    if (pid_ < 0) {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
}

daemon_process::~daemon_process() {
    if (!exit_status_) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

std::string daemon_process::log() const {
    return slurp(log_);
}

bool daemon_process::wait_for_log(const std::string& text, std::chrono::seconds limit) {
    for (const auto until = clock::now() + limit; clock::now() < until;) {
        if (log().find(text) != std::string::npos) {
            return true;
        }
        if (exited()) {
            return log().find(text) != std::string::npos;
        }
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

bool daemon_process::exited() {
    if (exit_status_) {
        return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = status;
    }
    return exit_status_.has_value();
}

std::optional<int> daemon_process::wait_exit(std::chrono::seconds limit) {
    for (const auto until = clock::now() + limit; clock::now() < until;) {
        if (exited()) {
            return WIFEXITED(*exit_status_) ? WEXITSTATUS(*exit_status_) : -WTERMSIG(*exit_status_);
        }
        std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
}

}  // namespace pglease::test
