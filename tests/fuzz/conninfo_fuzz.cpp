// Connection strings and URLs (backends[].url, PGLEASE_BACKEND_URL) as pgleased takes them apart
// and changes them: libpq's parser decides what is valid; what it accepts keeps every option
// when the database or a session setting is replaced, and any value survives quoting.
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

#include "pg/conninfo.hpp"

namespace {

std::map<std::string, std::string> without(std::map<std::string, std::string> parts,
                                           const std::string& key) {
    parts.erase(key);
    return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace pg = pglease::pg;
    const std::string text(reinterpret_cast<const char*>(data), size);
    // Quoting: any value (no NUL: libpq strings end there) reads back as itself.
    if (!text.empty() && text.find('\0') == std::string::npos) {
        const auto quoted = pg::parse_conninfo("application_name=" + pg::conninfo_value(text));
        if (quoted.at("application_name") != text) {
            __builtin_trap();
        }
    }
    std::map<std::string, std::string> parts;
    try {
        parts = pg::parse_conninfo(text);
    } catch (const std::invalid_argument&) {
        return 0;
    }
    const auto moved = pg::parse_conninfo(pg::with_database(text, "pglease_x"));
    if (moved.at("dbname") != "pglease_x" || without(moved, "dbname") != without(parts, "dbname")) {
        __builtin_trap();
    }
    const auto set = pg::parse_conninfo(pg::with_session_setting(text, "lock_timeout", "5s"));
    if (set.at("options").find("-c lock_timeout=5s") == std::string::npos ||
        without(set, "options") != without(parts, "options")) {
        __builtin_trap();
    }
    return 0;
}
