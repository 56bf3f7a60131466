#pragma once

// Parsing JSON text that comes from outside (request bodies, the config file) so that a number
// too large for a double names where it stood, instead of escaping as an exception nobody
// expects.

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace pglease {

/// A number in the text overflows a double (`1e999`); `where` is the key path to it
/// ("templates.app.pool.min_idle"), empty at the top level or in arrays only.
class json_number_overflow : public std::runtime_error {
  public:
    json_number_overflow(std::string where, const std::string& what)
        : std::runtime_error(what), where_(std::move(where)) {}
    const std::string& where() const noexcept { return where_; }

  private:
    std::string where_;
};

/// `text` parsed. Throws nlohmann::json::parse_error for text that is not JSON, and
/// json_number_overflow for a number no double holds.
nlohmann::json parse_json_text(std::string_view text);

}  // namespace pglease
