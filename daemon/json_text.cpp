#include "json_text.hpp"

#include <vector>

namespace pglease {

nlohmann::json parse_json_text(std::string_view text) {
    using json = nlohmann::json;
    // The keys from the top down to the value being read: what an overflow names.
    std::vector<std::string> keys;
    const json::parser_callback_t note_keys = [&keys](int depth, json::parse_event_t event,
                                                      json& parsed) {
        if (event == json::parse_event_t::key && depth > 0) {
            keys.resize(static_cast<std::size_t>(depth));
            keys.back() = parsed.get<std::string>();
        } else if (event == json::parse_event_t::object_end ||
                   event == json::parse_event_t::array_end) {
            keys.resize(std::min(keys.size(), static_cast<std::size_t>(depth)));
        }
        return true;
    };
    try {
        return json::parse(text, note_keys);
    } catch (const json::out_of_range& e) {
        std::string where;
        for (const auto& key : keys) {
            where += (where.empty() ? "" : ".") + key;
        }
        throw json_number_overflow(std::move(where), e.what());
    }
}

}  // namespace pglease
