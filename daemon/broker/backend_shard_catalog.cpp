// The catalog is the state: comments on databases, and rebuilding memory from them.
#include <filesystem>

#include <spdlog/spdlog.h>

#include "broker/backend_shard.hpp"
#include "logging.hpp"
#include "pg/pg_error.hpp"
#include "pool/database_names.hpp"

namespace pglease {

namespace asio = boost::asio;
using std::chrono::system_clock;

asio::awaitable<void> backend_shard::write_comment(const std::string& database,
                                                   const catalog_comment& comment) {
    auto conn = co_await catalog_->acquire();
    co_await conn->exec("COMMENT ON DATABASE " + conn->quote_identifier(database) + " IS " +
                        conn->quote_literal(encode_catalog_comment(comment)));
}

catalog_comment backend_shard::clone_comment(const template_pool& pool, const clone& c) const {
    catalog_comment comment;
    comment.what = catalog_comment::kind::clone;
    comment.template_name = pool.template_name();
    comment.fingerprint = pool.fingerprint();
    comment.kept_until = c.kept_until;
    return comment;
}

asio::awaitable<void> backend_shard::reconcile() {
    // What the configured sources say each template should be now.
    for (auto& [name, entry] : templates_) {
        if (!entry.settings) {
            continue;
        }
        try {
            if (auto fingerprint = co_await source_fingerprint(entry)) {
                entry.wanted_fingerprint = *fingerprint;
            }
        } catch (const std::exception& e) {
            entry.state = "failed";
            entry.error = e.what();
            warn_limited("source_unusable template=" + name, "template={} source unusable: {}",
                         name, e.what());
        }
    }

    auto conn = co_await catalog_->acquire();
    auto rows = co_await conn->query(
        "SELECT d.oid::text, d.datname, d.datconnlimit, sd.description, "
        "  pg_get_userbyid(d.datdba) "
        "FROM pg_database d LEFT JOIN pg_shdescription sd "
        "  ON sd.objoid = d.oid AND sd.classoid = 'pg_database'::regclass "
        "WHERE starts_with(d.datname, $1) ORDER BY d.datname",
        config_.prefix);
    auto all_oids = co_await conn->exec("SELECT oid::text FROM pg_database");

    struct found {
        std::string name;
        catalog_comment comment;
        std::string owner;
    };
    std::vector<found> templates;
    std::vector<found> clones;
    std::size_t strays = 0;
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        const std::string name(rows.value(row, 1));
        const bool invalid = rows.value(row, 2) == "-2";
        auto comment =
            rows.is_null(row, 3) ? std::nullopt : decode_catalog_comment(rows.value(row, 3));
        if (invalid || !comment) {
            // Interrupted drops, clones whose creation never finished, or not ours after all.
            spdlog::info("backend={} dropping {} ({})", endpoint_.name, name,
                         invalid ? "invalid: an interrupted drop" : "no pglease comment");
            template_drop_queue_.push_back(name);
            ++strays;
            continue;
        }
        (comment->what == catalog_comment::kind::template_database ? templates : clones)
            .push_back({name, std::move(*comment), std::string(rows.value(row, 4))});
    }

    // A client-initialized template serves its newest ready version (the highest oid).
    std::map<std::string, std::pair<unsigned long, std::string>> newest_client_version;
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        auto comment =
            rows.is_null(row, 3) ? std::nullopt : decode_catalog_comment(rows.value(row, 3));
        if (comment && comment->client &&
            comment->phase == catalog_comment::template_phase::ready) {
            const unsigned long oid = std::stoul(std::string(rows.value(row, 0)));
            auto& newest = newest_client_version[comment->template_name];
            if (oid >= newest.first) {
                newest = {oid, comment->fingerprint};
            }
        }
    }
    for (auto& [name, comment, owner] : templates) {
        if (comment.phase != catalog_comment::template_phase::ready) {
            spdlog::info("backend={} dropping half-built template {}", endpoint_.name, name);
            template_drop_queue_.push_back(name);
            ++strays;
            continue;
        }
        auto& entry = entry_for(comment.template_name);
        auto pool =
            std::make_unique<template_pool>(comment.template_name, comment.fingerprint, name);
        if (comment.client && (!entry.settings || entry.client)) {
            entry.client = true;
            entry.settings = client_settings(comment.template_name);
            entry.wanted_fingerprint = newest_client_version[comment.template_name].second;
        }
        if (entry.settings && !entry.current && comment.fingerprint == entry.wanted_fingerprint) {
            entry.current = std::move(pool);
            entry.state = "ready";
            entry.error.clear();
        } else {
            pool->set_phase(template_pool::phase::draining);
            entry.draining.push_back(std::move(pool));
        }
    }

    const auto now = system_clock::now();
    // Adopted clones whose owner is not the role their leases hand out (made by an older
    // release, or before the template's lease_role changed): workers could not create in them.
    struct misowned {
        template_pool* pool;
        std::string name;
        std::string role;
    };
    std::vector<misowned> wrong_owner;
    for (auto& [name, comment, owner] : clones) {
        template_pool* pool = pool_of(comment.template_name, comment.fingerprint);
        const bool holds_lease =
            comment.lease && comment.lease->expires_at > now && !comment.released;
        const bool still_kept =
            comment.kept_until && *comment.kept_until > now && !comment.released;
        if (pool == nullptr) {
            if (!holds_lease && !still_kept) {
                template_drop_queue_.push_back(name);
                ++strays;
                continue;
            }
            // Its template is gone, but a worker still holds it: keep it under a version that only
            // drains (there is no template database to drop).
            auto& entry = entry_for(comment.template_name);
            auto orphan =
                std::make_unique<template_pool>(comment.template_name, comment.fingerprint, "");
            orphan->set_phase(template_pool::phase::draining);
            pool = orphan.get();
            entry.draining.push_back(std::move(orphan));
        }
        pool->note_sequence(clone_sequence(name));
        if (holds_lease) {
            clone& c = pool->add(name, clone_state::leased);
            c.lease_key = comment.lease->key;
            leases_[c.lease_key] = live_lease{*comment.lease, pool, &c};
            add_deadline(comment.lease->expires_at, deadline_kind::lease_expiry, c.lease_key);
        } else if (still_kept) {
            clone& c = pool->add(name, clone_state::kept);
            c.kept_until = comment.kept_until;
            kept_[name] = pool;
            add_deadline(*comment.kept_until, deadline_kind::keep_expiry, name);
        } else if (!comment.lease && !comment.kept_until && !comment.released &&
                   pool->current_phase() == template_pool::phase::ready) {
            pool->add(name, clone_state::idle);
        } else {
            // Released, expired while we were away, or of a version that drains.
            clone& c = pool->add(name, clone_state::creating);
            queue_drop(*pool, c);
            continue;
        }
        if (const template_entry& entry = templates_.at(comment.template_name);
            entry.settings && owner != lease_role_of(entry)) {
            wrong_owner.push_back({pool, name, lease_role_of(entry)});
        }
    }
    for (const auto& [pool, name, role] : wrong_owner) {
        try {
            // A change of owner is a catalog update: sessions on the clone may stay.
            co_await conn->exec("ALTER DATABASE " + conn->quote_identifier(name) + " OWNER TO " +
                                conn->quote_identifier(role));
            spdlog::info("backend={} db={} now owned by {}, the role its leases hand out",
                         endpoint_.name, name, role);
        } catch (const pg::server_error& e) {
            spdlog::warn("backend={} db={} cannot be given to lease role {}: {}", endpoint_.name,
                         name, role, e.what());
            if (clone* c = pool->find(name); c != nullptr && c->state == clone_state::idle) {
                queue_drop(*pool, *c);  // a fresh clone gets the right owner
            }
        }
    }
    spdlog::info("backend={} catalog: {} template versions, {} clones, {} live leases, {} to drop",
                 endpoint_.name, templates.size(), clones.size(), leases_.size(),
                 strays + drop_queue_.size());

    if (endpoint_.pgdata) {
        std::set<std::string> live;
        for (std::size_t row = 0; row < all_oids.rows(); ++row) {
            live.emplace(all_oids.value(row, 0));
        }
        // Nothing is being cloned yet, so no directory is half-written by a running CREATE.
        remove_orphaned_files(live);
        orphans_ = orphan_files{};
    } else {
        co_await report_orphaned_files(*conn);
    }
    retire_empty_pools();
    // Workers that asked while memory was being rebuilt are first in line for adopted clones.
    serve_waiters();
}

void backend_shard::remove_orphaned_files(const std::set<std::string>& live_oids) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(*endpoint_.pgdata / "base", ec)) {
        const std::string oid = entry.path().filename().string();
        if (oid.empty() || oid.find_first_not_of("0123456789") != std::string::npos ||
            live_oids.contains(oid)) {
            continue;
        }
        std::error_code removed;
        const auto bytes = fs::remove_all(entry.path(), removed);
        spdlog::info("backend={} removed {} ({} files) left by an interrupted CREATE DATABASE{}",
                     endpoint_.name, entry.path().string(), bytes,
                     removed ? ": " + removed.message() : "");
    }
}

asio::awaitable<void> backend_shard::report_orphaned_files(pg::connection& conn) {
    // Directories under base/ that no database owns, with their files and bytes. Someone else's
    // CREATE DATABASE running right now would be counted too (its row is not committed yet).
    static constexpr const char* orphans_sql = R"sql(
SELECT d.name, count(f.file), coalesce(sum((pg_stat_file('base/' || d.name || '/' || f.file,
                                                         true)).size), 0)::text
FROM pg_ls_dir('base') AS d(name)
LEFT JOIN LATERAL pg_ls_dir('base/' || d.name, true, false) AS f(file) ON true
WHERE d.name ~ '^[0-9]{1,10}$'
  AND NOT EXISTS (SELECT 1 FROM pg_database WHERE oid::text = d.name)
GROUP BY d.name ORDER BY d.name
)sql";
    pg::result rows;
    try {
        rows = co_await conn.exec(orphans_sql);
    } catch (const pg::server_error& e) {
        orphans_.reset();
        if (!orphan_check_refused_) {
            orphan_check_refused_ = true;
            spdlog::info(
                "backend={} cannot look for files left in its data directory by interrupted "
                "CREATE DATABASE ({}); grant the admin role EXECUTE on pg_ls_dir(text, boolean, "
                "boolean) and pg_stat_file(text, boolean) to have them "
                "reported",
                endpoint_.name, e.message());
        }
        co_return;
    }
    orphan_files found;
    std::string names;
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        ++found.directories;
        found.files += std::stoull(std::string(rows.value(row, 1)));
        found.bytes += std::stoull(std::string(rows.value(row, 2)));
        names +=
            (names.empty() ? "" : " ") + std::string("base/") + std::string(rows.value(row, 0));
    }
    orphans_ = found;
    if (found.directories > 0) {
        spdlog::warn(
            "backend={} {} directories in its data directory belong to no database ({} files, {} "
            "bytes), left by interrupted CREATE DATABASE: {}; PostgreSQL never frees them, remove "
            "them while the server is stopped",
            endpoint_.name, found.directories, found.files, found.bytes, names);
    }
}

backend_shard::template_entry& backend_shard::entry_for(const std::string& name) {
    metrics_.of(name);
    auto& entry = templates_[name];
    entry.name = name;
    return entry;
}

template_pool* backend_shard::pool_of(const std::string& template_name,
                                      const std::string& fingerprint) {
    auto it = templates_.find(template_name);
    if (it == templates_.end()) {
        return nullptr;
    }
    if (it->second.current && it->second.current->fingerprint() == fingerprint) {
        return it->second.current.get();
    }
    for (auto& pool : it->second.draining) {
        if (pool->fingerprint() == fingerprint) {
            return pool.get();
        }
    }
    return nullptr;
}

}  // namespace pglease
