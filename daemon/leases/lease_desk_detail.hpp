#pragma once

// Small helpers of the lease desk's two files (leases/lease_desk.cpp: granting;
// leases/lease_desk_endings.cpp: renewing, resetting and ending leases). Private to them.

#include <algorithm>
#include <chrono>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "leases/lease_desk.hpp"

namespace pglease::lease_desk_detail {

namespace asio = boost::asio;
using std::chrono::system_clock;
using steady = std::chrono::steady_clock;

inline std::string short_key(const std::string& key) {
    return key.substr(0, 12);
}

inline double seconds_since(steady::time_point start) {
    return std::chrono::duration<double>(steady::now() - start).count();
}

inline double held_for(const lease_record& record) {
    return std::max(
        0.0, std::chrono::duration<double>(system_clock::now() - record.acquired_at).count());
}

inline const char* mode_name(release_mode mode) {
    return mode == release_mode::reuse ? "reuse" : mode == release_mode::keep ? "keep" : "recycle";
}

// How long a reused clone's sessions get to end before the clone is recycled instead.
inline constexpr std::chrono::milliseconds session_patience{2000};

inline asio::awaitable<void> pause_for(steady::duration how_long) {
    asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace pglease::lease_desk_detail
