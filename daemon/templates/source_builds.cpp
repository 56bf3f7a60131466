#include "templates/source_builds.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "broker/backoff.hpp"
#include "catalog/catalog_comment.hpp"
#include "hashing/sha256.hpp"
#include "logging.hpp"
#include "pg/connection_pool.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"
#include "pool/database_names.hpp"
#include "pool/drop_database.hpp"
#include "pool/lease_access.hpp"
#include "templates/fingerprint.hpp"
#include "templates/template_builder.hpp"
#include "templates/template_set.hpp"
#include "templates/version_snapshot.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// 1 s, 2 s, 4 s ... up to a minute between attempts at a failing build.
std::chrono::seconds build_backoff(int failures) {
    return doubling_backoff(failures, 60s);
}

// Database sources are read over the network; look at them less often than at files.
constexpr auto database_source_interval = 30s;

}  // namespace

source_builds::source_builds(asio::any_io_executor executor, const backend_endpoint& endpoint,
                             std::string prefix, std::filesystem::path working_dir,
                             std::filesystem::path state_dir, template_set& templates,
                             pg::connection_pool& operations, broker_metrics& metrics,
                             backend_life& life, hooks wiring)
    : executor_(std::move(executor)),
      endpoint_(endpoint),
      prefix_(std::move(prefix)),
      working_dir_(std::move(working_dir)),
      state_dir_(std::move(state_dir)),
      templates_(templates),
      operations_(operations),
      metrics_(metrics),
      life_(life),
      hooks_(std::move(wiring)) {}

asio::awaitable<std::optional<std::string>> source_builds::source_fingerprint(
    template_entry& entry) {
    const template_settings& source = *entry.settings;
    if (source.fingerprint) {
        co_return sha256_hex("given\n" + *source.fingerprint);
    }
    switch (source.kind) {
        case source_kind::migrations: {
            const std::string stamp = change_stamp({source.migrations});
            if (stamp == entry.source_stamp && !entry.wanted_fingerprint.empty()) {
                co_return entry.wanted_fingerprint;
            }
            entry.source_stamp = stamp;
            co_return migrations_fingerprint(source.migrations);
        }
        case source_kind::command: {
            const std::string stamp = change_stamp(source.watch);
            if (stamp == entry.source_stamp && !entry.wanted_fingerprint.empty()) {
                co_return entry.wanted_fingerprint;
            }
            entry.source_stamp = stamp;
            co_return command_fingerprint(source.command, source.watch);
        }
        case source_kind::database: {
            const auto now_ticks = std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(steady::now().time_since_epoch())
                    .count() /
                database_source_interval.count());
            if (now_ticks == entry.source_stamp && !entry.wanted_fingerprint.empty()) {
                co_return entry.wanted_fingerprint;
            }
            entry.source_stamp = now_ticks;
            auto conn = co_await pg::connection::connect(
                pg::with_database(endpoint_.admin_conninfo, source.database), 10s);
            auto schema = co_await schema_fingerprint(conn);
            co_return sha256_hex("database\n" + source.database + "\n" + schema);
        }
    }
    co_return std::nullopt;
}

asio::awaitable<void> source_builds::read_sources() {
    for (auto& [name, entry] : templates_.entries()) {
        if (!entry.settings || entry.client) {
            continue;
        }
        try {
            if (auto fingerprint = co_await source_fingerprint(entry)) {
                entry.wanted_fingerprint = *fingerprint;
            }
        } catch (const std::exception& e) {
            entry.state = template_state::failed;
            entry.error = e.what();
            warn_limited("source_unusable template=" + name, "template={} source unusable: {}",
                         name, e.what());
        }
    }
}

asio::awaitable<void> source_builds::watch() {
    for (auto& [name, entry] : templates_.entries()) {
        if (!entry.settings || entry.client || entry.building || life_.stopping || !life_.up) {
            continue;
        }
        std::optional<std::string> fingerprint;
        std::string problem;
        try {
            fingerprint = co_await source_fingerprint(entry);
        } catch (const std::exception& e) {
            problem = e.what();
        }
        if (!fingerprint) {
            if (entry.error != problem) {
                spdlog::warn("template={} source unusable: {}", name, problem);
            }
            entry.error = problem;
            if (!entry.current) {
                entry.state = template_state::failed;
            }
            continue;
        }
        if (entry.current && entry.current->fingerprint() == *fingerprint) {
            entry.wanted_fingerprint = *fingerprint;
            continue;
        }
        const bool same_failure = *fingerprint == entry.wanted_fingerprint && entry.failures > 0;
        if (same_failure && steady::now() < entry.retry_at) {
            continue;
        }
        if (*fingerprint != entry.wanted_fingerprint) {
            entry.failures = 0;
        }
        entry.wanted_fingerprint = *fingerprint;
        entry.building = true;
        spawn_background(executor_, life_, build_version(entry, *fingerprint), endpoint_.name,
                         "build of template " + name);
    }
}

asio::awaitable<void> source_builds::build_version(template_entry& entry, std::string fingerprint) {
    const auto generation = life_.generation;
    const template_settings& source = *entry.settings;
    const std::string database = template_database_name(prefix_, entry.name, fingerprint);
    const auto started = steady::now();
    if (!entry.current) {
        entry.state = template_state::building;
    }
    spdlog::info("template={} building version {} into {}", entry.name,
                 short_fingerprint(fingerprint), database);
    std::string failure;
    std::shared_ptr<const version_snapshot> snapshot;
    try {
        {
            auto conn = co_await operations_.acquire();
            // Its migrations run as the lease role, which alone may connect to it meanwhile.
            const clone_access access =
                access_of(&entry, endpoint_, lease_role_of(entry, endpoint_.lease_role));
            // A leftover of an earlier attempt.
            co_await drop_database(*conn, database);
            const std::string from =
                source.kind == source_kind::database ? source.database : std::string("template0");
            for (int attempt = 1;; ++attempt) {
                try {
                    co_await conn->exec(create_template_sql(*conn, database, from, access));
                    break;
                } catch (const pg::object_in_use_error&) {
                    // Someone is connected to the source database; it may be us, a moment ago.
                    if (attempt == 50) {
                        throw;
                    }
                }
                asio::steady_timer pause(executor_, 200ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
            co_await open_template(
                *conn, pg::with_database(endpoint_.admin_conninfo, database), database, access,
                encode_catalog_comment(template_comment(entry.name, fingerprint, false, false)));
        }
        build_target target;
        target.admin_conninfo = pg::with_database(endpoint_.admin_conninfo, database);
        target.database = database;
        target.lease_role = lease_role_of(entry, endpoint_.lease_role);
        target.lease_password = lease_password_of(entry, endpoint_.lease_password);
        target.host = endpoint_.worker_host;
        target.port = endpoint_.worker_port;
        target.working_dir = working_dir_;
        if (source.kind == source_kind::database) {
            // A clone belongs to the lease role; objects that another role owns would fail the
            // worker's ALTER or TRUNCATE in the middle of a test. Say so now.
            auto conn = co_await pg::connection::connect(target.admin_conninfo, 30s);
            co_await check_object_owners(conn, source, target.lease_role);
        } else if (source.kind == source_kind::migrations) {
            co_await apply_migrations(source, target);
        } else if (source.kind == source_kind::command) {
            co_await run_migration_command(source, target);
        }
        snapshot =
            co_await record_snapshot(target.admin_conninfo, state_dir_ / database, entry.name);
        auto conn = co_await operations_.acquire();
        co_await seal_template(
            *conn, database,
            encode_catalog_comment(template_comment(entry.name, fingerprint, true, false)));
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (generation != life_.generation || life_.stopping) {
        co_return;
    }
    entry.building = false;
    const std::chrono::duration<double> took = steady::now() - started;
    if (!failure.empty()) {
        metrics_.of(entry.name).build_failed(took.count());
        entry.failures += 1;
        entry.retry_at = steady::now() + build_backoff(entry.failures);
        entry.error = failure;
        if (!entry.current) {
            entry.state = template_state::failed;
        }
        warn_limited("build_failed template=" + entry.name,
                     "template={} build of version {} failed (attempt {}, next in {}s): {}",
                     entry.name, short_fingerprint(fingerprint), entry.failures,
                     build_backoff(entry.failures).count(), failure);
        hooks_.drop_database(database);
        // Waiters cannot be served by a template that does not exist: let them hear why now.
        if (!entry.current) {
            hooks_.failed(entry);
        }
        hooks_.changed();
        co_return;
    }
    metrics_.of(entry.name).build_succeeded(took.count());
    spdlog::info("template={} version {} ready in {:.0f} ms", entry.name,
                 short_fingerprint(fingerprint), took.count() * 1000);
    entry.failures = 0;
    entry.error.clear();
    entry.state = template_state::ready;
    auto ready = std::make_unique<template_pool>(entry.name, fingerprint, database);
    ready->set_snapshot(std::move(snapshot));
    hooks_.built(entry, std::move(ready));
}

}  // namespace pglease
