#pragma once

#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace pglease::test {

/// Runs the coroutine `make()` returns on `io` (one thread, as in the daemon) until it finishes
/// and returns its result, rethrowing what it threw. Fails when it runs longer than `limit`.
/// Objects made on `io` (a cluster's server process) must not outlive it.
template <typename Make>
auto run_async(boost::asio::io_context& io, Make&& make,
               std::chrono::seconds limit = std::chrono::seconds(120)) {
    using value_type = typename decltype(make())::value_type;
    // Background work on `io` (a broker's timers) never runs out, so stop when this one ends.
    std::exception_ptr failure;
    bool done = false;
    if constexpr (std::is_void_v<value_type>) {
        io.restart();
        boost::asio::co_spawn(io, make(), [&](const std::exception_ptr& e) {
            failure = e;
            done = true;
            io.stop();
        });
        io.run_for(limit);
        if (!done) {
            throw std::runtime_error("coroutine did not finish within the test's time limit");
        }
        if (failure) {
            std::rethrow_exception(failure);
        }
    } else {
        std::optional<value_type> result;
        io.restart();
        boost::asio::co_spawn(io, make(), [&](const std::exception_ptr& e, value_type value) {
            failure = e;
            if (!e) {
                result.emplace(std::move(value));
            }
            done = true;
            io.stop();
        });
        io.run_for(limit);
        if (!done) {
            throw std::runtime_error("coroutine did not finish within the test's time limit");
        }
        if (failure) {
            std::rethrow_exception(failure);
        }
        return std::move(*result);
    }
}

/// As above, on a fresh io_context of its own.
template <typename Make>
auto run_async(Make&& make, std::chrono::seconds limit = std::chrono::seconds(120)) {
    boost::asio::io_context io;
    return run_async(io, std::forward<Make>(make), limit);
}

}  // namespace pglease::test

#include <exception>
#include <functional>
#include <vector>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pglease::test {

/// Runs every task concurrently on the current executor and waits for all of them; rethrows the
/// first failure once all have ended.
inline boost::asio::awaitable<void> when_all(
    std::vector<std::function<boost::asio::awaitable<void>()>> tasks) {
    auto executor = co_await boost::asio::this_coro::executor;
    std::size_t remaining = tasks.size();
    std::exception_ptr first_failure;
    boost::asio::steady_timer all_done(executor, std::chrono::steady_clock::time_point::max());
    for (auto& task : tasks) {
        boost::asio::co_spawn(executor, task(), [&](const std::exception_ptr& failure) {
            if (failure && !first_failure) {
                first_failure = failure;
            }
            if (--remaining == 0) {
                all_done.cancel();
            }
        });
    }
    if (remaining > 0) {
        boost::system::error_code ignored;
        co_await all_done.async_wait(
            boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    }
    if (first_failure) {
        std::rethrow_exception(first_failure);
    }
}

}  // namespace pglease::test
