#pragma once

#include <string_view>

namespace pglease {

/// Where a template is: no version ready yet, a version serving leases, or failed to build
/// (with no version to serve).
enum class template_state { building, ready, failed };

/// The name used in the API, metrics and logs.
constexpr std::string_view to_string(template_state state) noexcept {
    switch (state) {
        case template_state::building:
            return "building";
        case template_state::ready:
            return "ready";
        case template_state::failed:
            break;
    }
    return "failed";
}

}  // namespace pglease
