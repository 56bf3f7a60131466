#pragma once

#include <algorithm>
#include <chrono>

namespace pglease {

/// 1 s after the first failure, doubling after each further one, never more than `cap`.
inline std::chrono::seconds doubling_backoff(int failures, std::chrono::seconds cap) {
    const auto doubled = std::chrono::seconds(std::int64_t{1} << std::clamp(failures - 1, 0, 20));
    return std::min(doubled, cap);
}

}  // namespace pglease
