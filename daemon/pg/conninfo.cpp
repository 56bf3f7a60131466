#include "pg/conninfo.hpp"

#include <memory>
#include <stdexcept>

#include <libpq-fe.h>

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

std::map<std::string, std::string> parse_conninfo(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* raw = PQconninfoParse(conninfo.c_str(), &error);
    if (raw == nullptr) {
        std::string message = error ? error : "out of memory";
        PQfreemem(error);
        while (!message.empty() && message.back() == '\n') {
            message.pop_back();
        }
        throw std::invalid_argument("invalid connection string: " + message);
    }
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(raw, &PQconninfoFree);
    std::map<std::string, std::string> parsed;
    for (const PQconninfoOption* option = raw; option->keyword != nullptr; ++option) {
        if (option->val != nullptr && *option->val != '\0') {
            parsed.emplace(option->keyword, option->val);
        }
    }
    return parsed;
}

namespace {

std::string joined(const std::map<std::string, std::string>& options) {
    std::string out;
    for (const auto& [keyword, value] : options) {
        if (!out.empty()) {
            out += ' ';
        }
        out += keyword + "=" + conninfo_value(value);
    }
    return out;
}

}  // namespace

std::string with_database(const std::string& conninfo, const std::string& database) {
    auto options = parse_conninfo(conninfo);
    options["dbname"] = database;
    return joined(options);
}

std::string with_session_setting(const std::string& conninfo, const std::string& name,
                                 const std::string& value) {
    auto options = parse_conninfo(conninfo);
    std::string& given = options["options"];
    given += (given.empty() ? "" : " ") + std::string("-c ") + name + "=" + value;
    return joined(options);
}

}  // namespace pglease::pg
