#include "pool/database_names.hpp"

#include <charconv>
#include <stdexcept>

#include "pg/identifier.hpp"

namespace pglease {
namespace {

std::string checked(std::string name) {
    if (auto problem = pg::identifier_problem(name)) {
        // Settings validation keeps prefixes and template names short enough; this is a bug guard.
        throw std::logic_error("database name " + name + " " + *problem);
    }
    return name;
}

}  // namespace

std::string short_fingerprint(std::string_view fingerprint) {
    return std::string(fingerprint.substr(0, 8));
}

std::string template_database_name(std::string_view prefix, std::string_view template_name,
                                   std::string_view fingerprint) {
    return checked(std::string(prefix) + std::string(template_name) + "_" +
                   short_fingerprint(fingerprint) + "_tpl");
}

std::string clone_database_name(std::string_view prefix, std::string_view template_name,
                                std::string_view fingerprint, std::uint32_t sequence) {
    return checked(std::string(prefix) + std::string(template_name) + "_" +
                   short_fingerprint(fingerprint) + "_" + std::to_string(sequence));
}

std::uint32_t clone_sequence(std::string_view database_name) noexcept {
    const auto underscore = database_name.rfind('_');
    if (underscore == std::string_view::npos) {
        return 0;
    }
    const auto digits = database_name.substr(underscore + 1);
    std::uint32_t sequence = 0;
    const auto [end, error] =
        std::from_chars(digits.data(), digits.data() + digits.size(), sequence);
    return error == std::errc() && end == digits.data() + digits.size() ? sequence : 0;
}

}  // namespace pglease
