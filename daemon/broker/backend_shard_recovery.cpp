// Rebuilding memory from the catalog: at start, and after the backend came back.
#include <spdlog/spdlog.h>

#include "broker/shard_parts.hpp"
#include "catalog/catalog_listing.hpp"
#include "catalog/reconcile_plan.hpp"
#include "pg/pg_error.hpp"
#include "pool/database_names.hpp"
#include "pool/session_ender.hpp"
#include "templates/version_snapshot.hpp"

namespace pglease {

namespace asio = boost::asio;

asio::awaitable<void> backend_shard::reconcile() {
    parts& p = *parts_;
    // What the configured sources say each template should be now.
    co_await p.sources.read_sources();
    auto conn = co_await p.catalog.acquire();
    const auto listing = co_await read_listing(*conn, config_.prefix);
    const auto oids = co_await database_oids(*conn);
    // With per-lease roles the admin owns every database: no lease role may change who connects.
    const bool per_lease = !endpoint_.lease_role_prefix.empty();
    std::string admin;
    if (per_lease) {
        auto me = co_await conn->exec("SELECT current_user");
        admin = me.value(0, 0);
    }

    std::map<std::string, template_expectation> expected;
    for (const auto& [name, entry] : p.templates.entries()) {
        if (entry.settings) {
            expected[name] = {entry.client, entry.wanted_fingerprint,
                              per_lease ? admin : lease_role_of(entry, endpoint_.lease_role)};
        }
    }
    const reconcile_plan plan =
        plan_reconcile(listing, expected, per_lease ? admin : endpoint_.lease_role,
                       std::chrono::system_clock::now());
    if (per_lease) {
        co_await give_templates_to_admin(*conn, listing, admin);
    }

    for (const auto& stray : plan.drops) {
        spdlog::info("backend={} dropping {} ({})", endpoint_.name, stray.database, stray.reason);
        p.pool.drop_database(stray.database);
    }
    for (const auto& version : plan.versions) {
        template_entry& entry = p.templates.entry_for(version.template_name);
        if (version.client) {
            entry.client = true;
            entry.settings = p.clients.settings_for(version.template_name);
            entry.wanted_fingerprint = plan.client_templates.at(version.template_name);
        }
        auto pool = std::make_unique<template_pool>(version.template_name, version.fingerprint,
                                                    version.database);
        if (!version.database.empty()) {
            if (auto snapshot = load_snapshot(config_.state_dir / version.database)) {
                pool->set_snapshot(std::make_shared<const version_snapshot>(std::move(*snapshot)));
            }
        }
        // A version whose last lease the catalog does not know counts as leased now.
        pool->last_leased = version.last_leased.value_or(std::chrono::system_clock::now());
        pool->recorded_leased = pool->last_leased;
        if (version.serves) {
            entry.current = std::move(pool);
            entry.state = template_state::ready;
            entry.error.clear();
        } else if (version.side) {
            p.templates.add_other(entry, std::move(pool));
        } else {
            p.templates.add_draining(entry, std::move(pool));
        }
    }
    std::size_t to_drop = plan.drops.size();
    for (const auto& adopted : plan.clones) {
        template_pool* pool = p.templates.pool_of(adopted.template_name, adopted.fingerprint);
        pool->note_sequence(clone_sequence(adopted.database));
        switch (adopted.state) {
            case clone_state::leased:
                p.leases.add(*adopted.lease, *pool,
                             pool->add(adopted.database, clone_state::leased));
                break;
            case clone_state::kept:
                p.leases.keep(*pool, pool->add(adopted.database, clone_state::kept),
                              *adopted.kept_until);
                break;
            case clone_state::idle:
                pool->add(adopted.database, clone_state::idle);
                break;
            default:
                p.pool.drop(*pool, pool->add(adopted.database, clone_state::creating));
                ++to_drop;
                break;
        }
        if (clone* c = pool->find(adopted.database)) {
            c->baseline = adopted.baseline;
        }
        if (adopted.give_to.empty()) {
            continue;
        }
        if (per_lease) {
            // Made without per-lease roles: anyone may connect to it. An idle one is cloned
            // again; a leased one goes at its release (its privileges fail the reset's check).
            if (clone* c = pool->find(adopted.database);
                c != nullptr && c->state == clone_state::idle) {
                spdlog::info("backend={} db={} was made without per-lease roles; cloning it again",
                             endpoint_.name, adopted.database);
                p.pool.drop(*pool, *c);
            }
            continue;
        }
        // Clones owned by another role than their leases hand out (made by an older release,
        // or before the template's lease_role changed): workers could not create in them.
        try {
            // A change of owner is a catalog update: sessions on the clone may stay.
            co_await conn->exec("ALTER DATABASE " + conn->quote_identifier(adopted.database) +
                                " OWNER TO " + conn->quote_identifier(adopted.give_to));
            spdlog::info("backend={} db={} now owned by {}, the role its leases hand out",
                         endpoint_.name, adopted.database, adopted.give_to);
        } catch (const pg::server_error& e) {
            spdlog::warn("backend={} db={} cannot be given to lease role {}: {}", endpoint_.name,
                         adopted.database, adopted.give_to, e.what());
            if (clone* c = pool->find(adopted.database);
                c != nullptr && c->state == clone_state::idle) {
                p.pool.drop(*pool, *c);  // a fresh clone gets the right owner
            }
        }
    }
    co_await settle_idle_clones(*conn, plan);
    spdlog::info("backend={} catalog: {} template versions, {} clones, {} live leases, {} to drop",
                 endpoint_.name, plan.versions.size(), plan.clones.size(), p.leases.size(),
                 to_drop);
    // The roles of leases that ended while no broker ran, or whose end was not written.
    if (const auto swept = co_await p.roles.sweep(*conn)) {
        spdlog::info("backend={} dropped {} roles of leases that are over", endpoint_.name, swept);
    }

    if (endpoint_.pgdata) {
        // Nothing is being cloned yet, so no directory is half-written by a running CREATE.
        remove_orphaned_files(*endpoint_.pgdata, oids, endpoint_.name);
        orphans_ = orphan_files{};
    } else {
        co_await find_orphans(*conn);
    }
    for (auto& database : p.templates.retire_empty()) {
        p.pool.drop_database(std::move(database));
    }
    // Workers that asked while memory was being rebuilt are first in line for adopted clones.
    p.desk.serve_waiters();
}

// A broker stopped between a reuse's commit and the end of its clone's sessions leaves them
// connected to a clone the catalog calls idle: such a clone is offered once they are gone, as a
// reused one is.
asio::awaitable<void> backend_shard::settle_idle_clones(pg::connection& conn,
                                                        const reconcile_plan& plan) {
    std::string names;
    for (const auto& adopted : plan.clones) {
        template_pool* pool = parts_->templates.pool_of(adopted.template_name, adopted.fingerprint);
        const clone* c = pool != nullptr ? pool->find(adopted.database) : nullptr;
        if (c != nullptr && c->state == clone_state::idle) {
            names += (names.empty() ? "" : ", ") + conn.quote_literal(adopted.database);
        }
    }
    if (names.empty()) {
        co_return;
    }
    const auto busy = co_await conn.exec(session_ender::count_statement(names));
    for (std::size_t row = 0; row < busy.rows(); ++row) {
        const std::string name(busy.value(row, 0));
        for (const auto& adopted : plan.clones) {
            template_pool* pool =
                parts_->templates.pool_of(adopted.template_name, adopted.fingerprint);
            clone* c = adopted.database == name ? pool->find(name) : nullptr;
            if (c != nullptr && c->state == clone_state::idle) {
                spdlog::info("backend={} db={} is idle but has sessions; offered once they end",
                             endpoint_.name, name);
                parts_->desk.offer_once_settled(*pool, *c);
            }
        }
    }
}

asio::awaitable<void> backend_shard::give_templates_to_admin(
    pg::connection& conn, const std::vector<listed_database>& listing, const std::string& admin) {
    for (const auto& db : listing) {
        if (!db.comment || db.comment->what != catalog_comment::kind::template_database ||
            db.owner == admin) {
            continue;
        }
        // Its owner, and every member of its owner, could open it to connections again.
        try {
            co_await conn.exec("ALTER DATABASE " + conn.quote_identifier(db.name) +
                               " OWNER TO CURRENT_USER");
            spdlog::info("backend={} template database {} now owned by {} (per-lease roles)",
                         endpoint_.name, db.name, admin);
        } catch (const pg::server_error& e) {
            spdlog::warn("backend={} template database {} cannot be given to {}: {}",
                         endpoint_.name, db.name, admin, e.what());
        }
    }
}

asio::awaitable<void> backend_shard::find_orphans(pg::connection& conn) {
    std::string refusal;
    orphans_ = co_await find_orphaned_files(conn, refusal);
    if (!orphans_) {
        if (!orphan_refusal_logged_) {
            orphan_refusal_logged_ = true;
            spdlog::info(
                "backend={} cannot look for files left in its data directory by interrupted "
                "CREATE DATABASE ({}); grant the admin role EXECUTE on pg_ls_dir(text, boolean, "
                "boolean) and pg_stat_file(text, boolean) to have them reported",
                endpoint_.name, refusal);
        }
        co_return;
    }
    if (orphans_->directories > 0) {
        std::string names;
        for (const auto& name : orphans_->names) {
            names += (names.empty() ? "" : " ") + name;
        }
        spdlog::warn(
            "backend={} {} directories in its data directory belong to no database ({} files, {} "
            "bytes), left by interrupted CREATE DATABASE: {}; PostgreSQL never frees them, remove "
            "them while the server is stopped",
            endpoint_.name, orphans_->directories, orphans_->files, orphans_->bytes, names);
    }
}

}  // namespace pglease
