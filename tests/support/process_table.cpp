#include "support/process_table.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace pglease::test {

namespace {

// A process that exits mid-read makes the read fail (ESRCH): it reads as gone.
std::string slurp(const std::string& file) {
    try {
        std::ifstream in(file, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    } catch (const std::exception&) {
        return {};
    }
}

}  // namespace

bool process_alive(int pid) {
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

std::vector<int> processes_mentioning(const std::string& text) {
    std::vector<int> found;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        const int pid = std::stoi(name);
        if (slurp("/proc/" + name + "/cmdline").find(text) != std::string::npos &&
            process_alive(pid)) {
            found.push_back(pid);
        }
    }
    return found;
}

int process_uid(int pid) {
    std::istringstream status(slurp("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Uid:", 0) == 0) {
            return std::stoi(line.substr(4));
        }
    }
    return -1;
}

}  // namespace pglease::test
