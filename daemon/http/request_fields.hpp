#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace pglease {

/// The fields of a JSON request body, read one by one with their bounds; every refusal is an
/// api_error 400 that names the field and what it must be.
class request_fields {
  public:
    /// Parses `body`; an empty body is an empty object. Throws invalid_json otherwise.
    explicit request_fields(const std::string& body);

    /// An integer field within [min, max], if present.
    std::optional<std::int64_t> integer(const std::string& name, std::int64_t min,
                                        std::int64_t max);
    /// A string field of at most `max_length` bytes, if present.
    std::optional<std::string> text(const std::string& name, std::size_t max_length);
    /// An object of string values (at most `max_entries`; keys and values bounded), if present.
    std::optional<std::map<std::string, std::string>> labels(const std::string& name,
                                                             std::size_t max_entries,
                                                             std::size_t max_key,
                                                             std::size_t max_value);
    /// Refuses any field not read so far.
    void reject_unknown() const;

  private:
    nlohmann::json body_;
    std::set<std::string> known_;
};

/// The query parameters of a target ("a=1&b=2"), percent-decoded.
std::map<std::string, std::string> parse_query(const std::string& query);

/// A whole-number query parameter within [min, max]; throws api_error 400 naming it.
std::int64_t query_integer(const std::string& name, const std::string& text, std::int64_t min,
                           std::int64_t max);

}  // namespace pglease
