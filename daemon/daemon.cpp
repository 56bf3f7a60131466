#include "daemon.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>

namespace pglease {

namespace asio = boost::asio;

int run_daemon(const daemon_options& options) {
    // A peer that goes away mid-write must not kill the daemon.
    ::signal(SIGPIPE, SIG_IGN);

    asio::io_context io;
    // Registered before anything starts, so a signal during startup is not lost.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    int exit_code = 0;

    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto cluster = co_await embedded_cluster::start(options.cluster);
            spdlog::info("pgleased ready; stop it with SIGTERM or SIGINT");
            const int signal = co_await signals.async_wait(asio::use_awaitable);
            spdlog::info("received {}; shutting down", signal == SIGTERM ? "SIGTERM" : "SIGINT");
            co_await cluster->stop();
        },
        [&](const std::exception_ptr& failure) {
            if (!failure) {
                return;
            }
            try {
                std::rethrow_exception(failure);
            } catch (const std::exception& e) {
                spdlog::critical("pgleased cannot run: {}", e.what());
            }
            exit_code = 1;
        });
    io.run();
    return exit_code;
}

}  // namespace pglease
