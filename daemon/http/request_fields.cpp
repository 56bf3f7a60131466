#include "http/request_fields.hpp"

#include <charconv>

#include "http/api_error.hpp"
#include "json_text.hpp"

namespace pglease {
namespace {

std::string range_text(std::int64_t min, std::int64_t max) {
    return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

[[noreturn]] void refuse(const std::string& message) {
    throw api_error(400, "invalid_argument", message);
}

}  // namespace

request_fields::request_fields(const std::string& body) {
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
        body_ = nlohmann::json::object();
        return;
    }
    try {
        body_ = parse_json_text(body);
    } catch (const nlohmann::json::parse_error& e) {
        throw api_error(400, "invalid_json",
                        "request body is not valid JSON (at byte " + std::to_string(e.byte) + ")");
    } catch (const json_number_overflow& e) {
        refuse((e.where().empty() ? std::string("a number") : e.where()) +
               " is out of range: a number past what JSON's doubles hold");
    }
    if (!body_.is_object()) {
        throw api_error(
            400, "invalid_json",
            std::string("request body must be a JSON object, not ") + body_.type_name());
    }
}

std::optional<std::int64_t> request_fields::integer(const std::string& name, std::int64_t min,
                                                    std::int64_t max) {
    known_.insert(name);
    const auto found = body_.find(name);
    if (found == body_.end()) {
        return std::nullopt;
    }
    if (found->is_number_unsigned()) {
        const auto value = found->get<std::uint64_t>();
        if (value > static_cast<std::uint64_t>(max) ||
            (min > 0 && value < static_cast<std::uint64_t>(min))) {
            refuse(name + " must be " + range_text(min, max) + ", not " + found->dump());
        }
        return static_cast<std::int64_t>(value);
    }
    if (!found->is_number_integer()) {
        refuse(name + " must be " + range_text(min, max) + ", not " + found->dump());
    }
    const auto value = found->get<std::int64_t>();
    if (value < min || value > max) {
        refuse(name + " must be " + range_text(min, max) + ", not " + found->dump());
    }
    return value;
}

std::optional<std::string> request_fields::text(const std::string& name, std::size_t max_length) {
    known_.insert(name);
    const auto found = body_.find(name);
    if (found == body_.end()) {
        return std::nullopt;
    }
    if (!found->is_string()) {
        refuse(name + " must be a string, not " + std::string(found->type_name()));
    }
    auto value = found->get<std::string>();
    if (value.size() > max_length) {
        refuse(name + " must be at most " + std::to_string(max_length) + " bytes long");
    }
    return value;
}

std::optional<std::map<std::string, std::string>> request_fields::labels(const std::string& name,
                                                                         std::size_t max_entries,
                                                                         std::size_t max_key,
                                                                         std::size_t max_value) {
    known_.insert(name);
    const auto found = body_.find(name);
    if (found == body_.end()) {
        return std::nullopt;
    }
    if (!found->is_object()) {
        refuse(name + " must be an object of strings, not " + std::string(found->type_name()));
    }
    if (found->size() > max_entries) {
        refuse(name + " may hold at most " + std::to_string(max_entries) + " entries");
    }
    std::map<std::string, std::string> values;
    for (const auto& [key, value] : found->items()) {
        if (!value.is_string()) {
            refuse(name + "." + key + " must be a string, not " + std::string(value.type_name()));
        }
        if (key.empty() || key.size() > max_key || value.get<std::string>().size() > max_value) {
            refuse(name + " keys must be 1 to " + std::to_string(max_key) +
                   " bytes and values at most " + std::to_string(max_value));
        }
        values.emplace(key, value.get<std::string>());
    }
    return values;
}

void request_fields::reject_unknown() const {
    for (const auto& [key, value] : body_.items()) {
        if (!known_.contains(key)) {
            std::string expected;
            for (const auto& name : known_) {
                expected += (expected.empty() ? "" : ", ") + name;
            }
            refuse("unknown field \"" + key + "\"" +
                   (expected.empty() ? std::string("; this request takes no fields")
                                     : "; known fields: " + expected));
        }
    }
}

std::map<std::string, std::string> parse_query(const std::string& query) {
    const auto decode = [](std::string_view text) {
        std::string out;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '+') {
                out += ' ';
            } else if (text[i] == '%' && i + 2 < text.size()) {
                int value = 0;
                const auto [end, error] =
                    std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
                if (error != std::errc() || end != text.data() + i + 3) {
                    throw api_error(400, "invalid_argument", "bad percent-encoding in the query");
                }
                out += static_cast<char>(value);
                i += 2;
            } else if (text[i] == '%') {
                throw api_error(400, "invalid_argument", "bad percent-encoding in the query");
            } else {
                out += text[i];
            }
        }
        return out;
    };
    std::map<std::string, std::string> parameters;
    std::size_t start = 0;
    while (start < query.size()) {
        auto end = query.find('&', start);
        if (end == std::string::npos) {
            end = query.size();
        }
        const std::string_view pair(query.data() + start, end - start);
        if (!pair.empty()) {
            const auto equals = pair.find('=');
            parameters[decode(pair.substr(0, equals))] =
                equals == std::string_view::npos ? std::string() : decode(pair.substr(equals + 1));
        }
        start = end + 1;
    }
    return parameters;
}

std::int64_t query_integer(const std::string& name, const std::string& text, std::int64_t min,
                           std::int64_t max) {
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
        throw api_error(400, "invalid_argument",
                        name + " must be " + range_text(min, max) + ", not \"" + text + "\"");
    }
    return value;
}

}  // namespace pglease
