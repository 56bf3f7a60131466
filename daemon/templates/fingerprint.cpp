#include "templates/fingerprint.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include "hashing/sha256.hpp"

namespace pglease {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + file.string());
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Regular files at or under `paths`, sorted, without duplicates.
std::vector<fs::path> files_under(const std::vector<fs::path>& paths) {
    std::vector<fs::path> files;
    for (const auto& path : paths) {
        std::error_code ec;
        if (fs::is_regular_file(path, ec)) {
            files.push_back(path);
        } else if (fs::is_directory(path, ec)) {
            for (auto it = fs::recursive_directory_iterator(path, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                if (it->is_regular_file(ec)) {
                    files.push_back(it->path());
                }
            }
        }
    }
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    return files;
}

}  // namespace

std::vector<fs::path> migration_files(const fs::path& dir) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".sql" && entry.is_regular_file()) {
            files.push_back(entry.path());
        }
    }
    if (ec) {
        throw std::runtime_error("cannot read migrations directory " + dir.string() + ": " +
                                 ec.message());
    }
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
        return a.filename().string() < b.filename().string();
    });
    return files;
}

std::string migrations_fingerprint(const fs::path& dir) {
    sha256_hasher hasher;
    hasher.update("migrations\n");
    for (const auto& file : migration_files(dir)) {
        hasher.update_framed(file.filename().string());
        hasher.update_framed(read_file(file));
    }
    return hasher.finish();
}

std::string command_fingerprint(const std::string& command, const std::vector<fs::path>& watch) {
    sha256_hasher hasher;
    hasher.update("command\n");
    hasher.update_framed(command);
    for (const auto& file : files_under(watch)) {
        hasher.update_framed(file.string());
        hasher.update_framed(read_file(file));
    }
    return hasher.finish();
}

std::string change_stamp(const std::vector<fs::path>& paths) {
    std::string stamp;
    for (const auto& file : files_under(paths)) {
        std::error_code ec;
        const auto size = fs::file_size(file, ec);
        const auto mtime = fs::last_write_time(file, ec).time_since_epoch().count();
        stamp += file.string() + "|" + std::to_string(size) + "|" + std::to_string(mtime) + "\n";
    }
    for (const auto& path : paths) {
        // A file added to or removed from a watched directory changes the directory's mtime.
        std::error_code ec;
        stamp += path.string() + "|" +
                 std::to_string(fs::last_write_time(path, ec).time_since_epoch().count()) + "\n";
    }
    return stamp;
}

}  // namespace pglease
