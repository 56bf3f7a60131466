#include "process/proc_stat.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

namespace pglease {

// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted from
// the last ')'.
std::optional<proc_stat> read_proc_stat(const std::string& pid) {
    std::ifstream file("/proc/" + pid + "/stat");
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    proc_stat stat;
    // Field 3 (state) is the first after ')'.
    for (int index = 3; fields >> field; ++index) {
        switch (index) {
            case 14:
                stat.utime_ticks = std::stod(field);
                break;
            case 15:
                stat.stime_ticks = std::stod(field);
                break;
            case 22:
                stat.start_ticks = std::stod(field);
                break;
            case 23:
                stat.virtual_bytes = std::stod(field);
                break;
            case 24:
                stat.resident_pages = std::stod(field);
                return stat;
            default:
                break;
        }
    }
    return std::nullopt;
}

}  // namespace pglease
