#pragma once

#include <cstdint>

namespace pglease {

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
std::uint16_t pick_free_port();

}  // namespace pglease
