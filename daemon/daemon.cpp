#include "daemon.hpp"

#include <cstdlib>
#include <signal.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_shard.hpp"
#include "broker/broker.hpp"
#include "embedded/embedded_cluster.hpp"
#include "http/api_router.hpp"
#include "http/http_server.hpp"
#include "metrics/broker_metrics.hpp"
#include "metrics/exposition.hpp"
#include "metrics/http_metrics.hpp"
#include "metrics/process_metrics.hpp"
#include "metrics/state_metrics.hpp"
#include "pool/lease_access.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

shard_config shard_config_from(const settings& options) {
    shard_config config;
    config.prefix = options.prefix;
    config.templates = options.templates;
    config.default_pool = options.default_pool;
    config.default_pool.version_idle = options.default_version_idle;
    config.default_lease = options.default_lease;
    config.working_dir = options.config_file
                             ? std::filesystem::absolute(*options.config_file).parent_path()
                             : std::filesystem::current_path();
    return config;
}

// Every HTTP connection and every session to a backend is a descriptor: the soft limit many
// service managers and containers set (1024) is raised to the hard one, as servers do.
void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) {
        return;
    }
    const rlim_t was = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
        spdlog::debug("open file limit raised from {} to {}", was, limit.rlim_cur);
    }
}

const char* signal_name(int signal) {
    return signal == SIGTERM ? "SIGTERM" : "SIGINT";
}

}  // namespace

int run_daemon(const settings& options) {
    // A peer that goes away mid-write must not kill the daemon.
    ::signal(SIGPIPE, SIG_IGN);
    raise_descriptor_limit();

    asio::io_context io;
    // Registered before anything starts, so a signal during startup is not lost.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    int exit_code = 0;
    bool abandoned = false;

    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            std::unique_ptr<embedded_cluster> cluster;
            std::vector<backend_endpoint> endpoints;
            if (options.backends.empty()) {
                cluster = co_await embedded_cluster::start(options.embedded);
                endpoints.push_back(embedded_endpoint(*cluster,
                                                      options.embedded_max_parallel_clones,
                                                      options.embedded_max_databases));
                if (options.embedded_per_lease_roles) {
                    endpoints.back().lease_role_prefix = lease_role_prefix(options.prefix);
                }
            }
            // What each template version holds, for resets in place, and generated passwords:
            // beside the embedded cluster, else in the data directory.
            const std::filesystem::path state_root =
                cluster ? cluster->data_dir()
                        : options.embedded.data_dir.value_or(std::filesystem::path(".pglease"));
            for (const auto& backend : options.backends) {
                endpoints.push_back(configured_endpoint(backend, state_root));
                if (backend.per_lease_roles) {
                    endpoints.back().lease_role_prefix = lease_role_prefix(options.prefix);
                }
            }
            shard_config config = shard_config_from(options);
            config.state_dir = state_root / "versions";
            broker engine(io.get_executor(), std::move(endpoints), config);
            http_metrics http_stats;
            const state_metrics state_stats(engine);
            const process_metrics process_stats;
            api_router router(engine, options.token, http_stats, [&] {
                return render_metrics({engine.metrics().registry().get(), &state_stats,
                                       http_stats.registry().get(), &process_stats});
            });
            http_server server(io.get_executor(), http_limits{}, [&router](http_request request) {
                return router.handle(std::move(request));
            });
            server.on_refused(
                [&http_stats](int status) { http_stats.record("malformed", status, 0); });
            // Listening before the backends are taken: /healthz answers while a standby waits.
            const std::string bound = server.listen(options.listen);
            spdlog::info("http listening on {}", bound);
            if (options.token.empty() && !is_loopback_listen_address(options.listen)) {
                spdlog::warn(
                    "!!! the HTTP API listens on {} beyond loopback WITHOUT a token: anyone who "
                    "can reach it can lease databases and read their credentials; set "
                    "PGLEASE_TOKEN or --token-file !!!",
                    bound);
            }
            // A failed start must end the race too (|| waits for the first success).
            auto start = [&]() -> asio::awaitable<std::exception_ptr> {
                try {
                    co_await engine.start();
                } catch (...) {
                    co_return std::current_exception();
                }
                co_return nullptr;
            };
            std::exception_ptr failure;
            try {
                auto first = co_await (start() || signals.async_wait(asio::use_awaitable));
                if (first.index() == 0 && std::get<0>(first)) {
                    std::rethrow_exception(std::get<0>(first));
                }
                if (first.index() == 0) {
                    spdlog::info("pgleased ready; stop it with SIGTERM or SIGINT");
                    const int signal = co_await signals.async_wait(asio::use_awaitable);
                    spdlog::info("received {}; shutting down", signal_name(signal));
                } else {
                    spdlog::info("received {} while starting; shutting down",
                                 signal_name(std::get<1>(first)));
                }
            } catch (...) {
                failure = std::current_exception();
            }
            co_await server.stop();
            co_await engine.stop();
            // Work that outlived the grace period (a long migration command, a hung backend)
            // holds pointers into the engine: the process ends without unwinding it.
            abandoned = engine.pending_tasks() > 0;
            if (cluster) {
                co_await cluster->stop();
            }
            if (failure) {
                std::rethrow_exception(failure);
            }
        },
        [&](const std::exception_ptr& failure) {
            if (abandoned) {
                io.stop();  // nothing more may run: what is left points into the engine
            }
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
    if (abandoned) {
        spdlog::warn("background work still running at exit; leaving it to the kernel");
        spdlog::shutdown();
        std::_Exit(exit_code);
    }
    return exit_code;
}

}  // namespace pglease
