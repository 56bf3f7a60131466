#include "pg/identifier.hpp"

namespace pglease::pg {

std::optional<std::string> identifier_problem(std::string_view name) {
    if (name.empty()) {
        return "is empty";
    }
    if (name.size() > max_identifier_bytes) {
        return "is " + std::to_string(name.size()) + " bytes long; PostgreSQL allows at most " +
               std::to_string(max_identifier_bytes);
    }
    if (name.find('\0') != std::string_view::npos) {
        return "contains a NUL byte";
    }
    return std::nullopt;
}

}  // namespace pglease::pg
