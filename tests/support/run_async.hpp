#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>

namespace pglease::test {

/// Runs the coroutine `make()` returns on `io` (one thread, as in the daemon) until it finishes
/// and returns its result, rethrowing what it threw. Fails when it runs longer than `limit`.
/// Objects made on `io` (a cluster's server process) must not outlive it.
template <typename Make>
auto run_async(boost::asio::io_context& io, Make&& make,
               std::chrono::seconds limit = std::chrono::seconds(120)) {
    io.restart();
    auto future = boost::asio::co_spawn(io, make(), boost::asio::use_future);
    io.run_for(limit);
    if (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        throw std::runtime_error("coroutine did not finish within the test's time limit");
    }
    return future.get();
}

/// As above, on a fresh io_context of its own.
template <typename Make>
auto run_async(Make&& make, std::chrono::seconds limit = std::chrono::seconds(120)) {
    boost::asio::io_context io;
    return run_async(io, std::forward<Make>(make), limit);
}

}  // namespace pglease::test

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <functional>
#include <vector>

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
        co_await all_done.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    }
    if (first_failure) {
        std::rethrow_exception(first_failure);
    }
}

}  // namespace pglease::test
