#include "pg/conninfo.hpp"

namespace pglease::pg {

std::string conninfo_value(std::string_view value) {
    std::string out;
    out.reserve(value.size() + 2);
    out += '\'';
    for (const char c : value) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    out += '\'';
    return out;
}

std::string make_conninfo(
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts) {
    std::string out;
    for (const auto& [keyword, value] : parts) {
        if (value.empty()) {
            continue;
        }
        if (!out.empty()) {
            out += ' ';
        }
        out += keyword;
        out += '=';
        out += conninfo_value(value);
    }
    return out;
}

}  // namespace pglease::pg
