// Template versions: noticing source changes, building a version, promoting it, draining the old.
#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "broker/backend_shard.hpp"
#include "broker/backoff.hpp"
#include "hashing/sha256.hpp"
#include "logging.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"
#include "pool/database_names.hpp"
#include "templates/fingerprint.hpp"
#include "templates/template_builder.hpp"

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

asio::awaitable<std::optional<std::string>> backend_shard::source_fingerprint(
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

asio::awaitable<void> backend_shard::watch_sources() {
    for (auto& [name, entry] : templates_) {
        if (!entry.settings || entry.client || entry.building || stopping_ || !up_) {
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
                entry.state = "failed";
            }
            continue;
        }
        const bool serving = entry.current && entry.current->fingerprint() == *fingerprint;
        if (serving) {
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
        ++background_tasks_;
        asio::co_spawn(executor_, build_version(entry, *fingerprint),
                       [this, name = name](const std::exception_ptr& failure) {
                           --background_tasks_;
                           if (failure) {
                               try {
                                   std::rethrow_exception(failure);
                               } catch (const std::exception& e) {
                                   spdlog::error("template={} build task failed: {}", name,
                                                 e.what());
                               }
                           }
                       });
    }
}

asio::awaitable<void> backend_shard::build_version(template_entry& entry, std::string fingerprint) {
    const auto generation = generation_;
    const template_settings& source = *entry.settings;
    const std::string database = template_database_name(config_.prefix, entry.name, fingerprint);
    const auto started = steady::now();
    if (!entry.current) {
        entry.state = "building";
    }
    spdlog::info("template={} building version {} into {}", entry.name,
                 short_fingerprint(fingerprint), database);
    std::string failure;
    try {
        {
            auto conn = co_await operations_->acquire();
            const std::string name = conn->quote_identifier(database);
            const std::string owner = conn->quote_identifier(lease_role_of(entry));
            // A leftover of an earlier attempt.
            co_await drop_database(*conn, database, false);
            const std::string from = source.kind == source_kind::database
                                         ? conn->quote_identifier(source.database)
                                         : std::string("template0");
            for (int attempt = 1;; ++attempt) {
                try {
                    co_await conn->exec("CREATE DATABASE " + name + " OWNER " + owner +
                                        " TEMPLATE " + from);
                    break;
                } catch (const pg::object_in_use_error&) {
                    // Someone is connected to the source database; it may be us, a moment ago.
                    if (attempt == 50) {
                        throw;
                    }
                }
                co_await sleep_for(200ms);
            }
            co_await conn->exec("COMMENT ON DATABASE " + name + " IS " +
                                conn->quote_literal(encode_catalog_comment(
                                    template_comment(entry.name, fingerprint, false, false))));
        }
        build_target target;
        target.admin_conninfo = pg::with_database(endpoint_.admin_conninfo, database);
        target.database = database;
        target.lease_role = lease_role_of(entry);
        target.lease_password = lease_password_of(entry);
        target.host = endpoint_.worker_host;
        target.port = endpoint_.worker_port;
        target.working_dir = config_.working_dir;
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
        co_await seal_template(database, entry.name, fingerprint, false);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (generation != generation_ || stopping_) {
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
            entry.state = "failed";
        }
        warn_limited("build_failed template=" + entry.name,
                     "template={} build of version {} failed (attempt {}, next in {}s): {}",
                     entry.name, short_fingerprint(fingerprint), entry.failures,
                     build_backoff(entry.failures).count(), failure);
        template_drop_queue_.push_back(database);
        // Waiters cannot be served by a template that does not exist: let them hear why now.
        if (!entry.current) {
            for (waiter* w : entry.waiters) {
                w->give_up = true;
                w->wakeup.cancel();
            }
        }
        schedule();
        co_return;
    }
    metrics_.of(entry.name).build_succeeded(took.count());
    spdlog::info("template={} version {} ready in {:.0f} ms", entry.name,
                 short_fingerprint(fingerprint), took.count() * 1000);
    entry.failures = 0;
    entry.error.clear();
    entry.state = "ready";
    promote(entry, std::make_unique<template_pool>(entry.name, fingerprint, database));
    schedule();
}

catalog_comment backend_shard::template_comment(const std::string& name,
                                                const std::string& fingerprint, bool ready,
                                                bool client) {
    catalog_comment comment;
    comment.what = catalog_comment::kind::template_database;
    comment.template_name = name;
    comment.fingerprint = fingerprint;
    comment.phase =
        ready ? catalog_comment::template_phase::ready : catalog_comment::template_phase::building;
    comment.client = client;
    return comment;
}

asio::awaitable<void> backend_shard::seal_template(std::string database, std::string name,
                                                   std::string fingerprint, bool client) {
    auto conn = co_await operations_->acquire();
    const std::string quoted = conn->quote_identifier(database);
    co_await conn->exec("ALTER DATABASE " + quoted +
                        " WITH ALLOW_CONNECTIONS false IS_TEMPLATE true");
    // No session may stay on a template, or clones fail with "being accessed by other users".
    co_await conn->query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1",
        database);
    co_await conn->exec("COMMENT ON DATABASE " + quoted + " IS " +
                        conn->quote_literal(encode_catalog_comment(
                            template_comment(name, fingerprint, true, client))));
}

void backend_shard::promote(template_entry& entry, std::unique_ptr<template_pool> ready) {
    // A version that comes back (A -> B -> A) while its old pool still drains: that pool, with its
    // leased clones and its sequence, is the version again. A second pool would reuse its clone
    // names and its template database.
    for (auto it = entry.draining.begin(); it != entry.draining.end(); ++it) {
        if ((*it)->fingerprint() == ready->fingerprint() &&
            (*it)->template_database() == ready->template_database()) {
            ready = std::move(*it);
            entry.draining.erase(it);
            ready->set_phase(template_pool::phase::ready);
            break;
        }
    }
    if (entry.current) {
        spdlog::info("template={} version {} replaced by {}; draining", entry.name,
                     short_fingerprint(entry.current->fingerprint()),
                     short_fingerprint(ready->fingerprint()));
        start_draining(entry, std::move(entry.current));
    }
    entry.current = std::move(ready);
}

void backend_shard::start_draining(template_entry& entry, std::unique_ptr<template_pool> pool) {
    pool->set_phase(template_pool::phase::draining);
    std::vector<clone*> idle(pool->in_state(clone_state::idle).begin(),
                             pool->in_state(clone_state::idle).end());
    for (clone* c : idle) {
        queue_drop(*pool, *c);
    }
    entry.draining.push_back(std::move(pool));
    retire_empty_pools();
}

const std::string& backend_shard::lease_role_of(const template_entry& entry) const {
    return entry.settings && !entry.settings->lease_role.empty() ? entry.settings->lease_role
                                                                 : endpoint_.lease_role;
}

const std::string& backend_shard::lease_password_of(const template_entry& entry) const {
    return entry.settings && !entry.settings->lease_role.empty() ? entry.settings->lease_password
                                                                 : endpoint_.lease_password;
}

}  // namespace pglease
