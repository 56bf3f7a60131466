#include "embedded/server_binaries.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <unistd.h>
#include <vector>

#include "process/child_process.hpp"

namespace pglease {
namespace {

// Unreadable directories on PATH (another user's home) are skipped, not errors.
bool is_executable(const std::filesystem::path& file) {
    std::error_code ec;
    return std::filesystem::is_regular_file(file, ec) && ::access(file.c_str(), X_OK) == 0;
}

// "15" -> {15}, "9.6" -> {9, 6}; non-numeric parts sort first.
std::vector<int> version_key(const std::string& name) {
    std::vector<int> key;
    std::stringstream parts(name);
    std::string part;
    while (std::getline(parts, part, '.')) {
        int number = -1;
        const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), number);
        key.push_back(error == std::errc() && end == part.data() + part.size() ? number : -1);
    }
    return key;
}

std::optional<std::filesystem::path> find_in_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (!dir.empty() && is_executable(std::filesystem::path(dir) / program)) {
            return std::filesystem::path(dir) / program;
        }
    }
    return std::nullopt;
}

constexpr std::chrono::seconds probe_timeout{20};

}  // namespace

bool holds_server_binaries(const std::filesystem::path& dir) {
    return is_executable(dir / "postgres") && is_executable(dir / "initdb");
}

std::optional<std::filesystem::path> newest_versioned_bin_dir(const std::filesystem::path& root) {
    std::error_code ec;
    std::optional<std::filesystem::path> best;
    std::vector<int> best_key;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
        const auto bin = entry.path() / "bin";
        if (!holds_server_binaries(bin)) {
            continue;
        }
        auto key = version_key(entry.path().filename().string());
        if (!best || key > best_key) {
            best = bin;
            best_key = std::move(key);
        }
    }
    return best;
}

std::optional<std::pair<std::string, int>> parse_server_version(const std::string& output) {
    static const std::regex pattern(R"(\(PostgreSQL\) ((\d+)(\.\d+)?))");
    std::smatch match;
    if (!std::regex_search(output, match, pattern)) {
        return std::nullopt;
    }
    const std::string major = match[2].str();
    int number = 0;
    std::from_chars(major.data(), major.data() + major.size(), number);
    return std::pair{match[1].str(), number};
}

boost::asio::awaitable<server_binaries> find_server_binaries(
    std::optional<std::filesystem::path> configured) {
    std::optional<std::filesystem::path> bin_dir;
    std::string searched;
    if (configured) {
        if (!holds_server_binaries(*configured)) {
            throw std::runtime_error("no executable postgres and initdb in " +
                                     configured->string());
        }
        bin_dir = configured;
    } else {
        if (auto pg_config = find_in_path("pg_config")) {
            std::vector<std::string> args{"--bindir"};
            child_options defaults;
            auto answer = co_await run_command(*pg_config, std::move(args), std::move(defaults),
                                               probe_timeout);
            std::string dir = answer.output.substr(0, answer.output.find('\n'));
            if (answer.exit_code == 0 && holds_server_binaries(dir)) {
                bin_dir = dir;
            }
            searched += "pg_config --bindir (" + dir + "), ";
        } else {
            searched += "pg_config (not on PATH), ";
        }
        if (!bin_dir) {
            bin_dir = newest_versioned_bin_dir("/usr/lib/postgresql");
            searched += "/usr/lib/postgresql/*/bin, ";
        }
        if (!bin_dir) {
            if (auto initdb = find_in_path("initdb");
                initdb && holds_server_binaries(initdb->parent_path())) {
                bin_dir = initdb->parent_path();
            }
            searched += "PATH";
        }
        if (!bin_dir) {
            throw std::runtime_error(
                "no PostgreSQL server binaries (postgres, initdb) found; searched " + searched +
                ". Install the server (Debian: apt-get install postgresql) or pass --pg-bin-dir");
        }
    }
    server_binaries found{*bin_dir, {}, 0};
    std::vector<std::string> args{"--version"};
    child_options defaults;
    auto answer =
        co_await run_command(found.postgres(), std::move(args), std::move(defaults), probe_timeout);
    auto version = parse_server_version(answer.output);
    if (answer.exit_code != 0 || !version) {
        throw std::runtime_error(found.postgres().string() + " --version failed: " + answer.output);
    }
    found.version = version->first;
    found.major_version = version->second;
    co_return found;
}

}  // namespace pglease
