#include "templates/template_set.hpp"

#include <spdlog/spdlog.h>

#include "pool/database_names.hpp"

namespace pglease {

template_set::template_set(const std::map<std::string, template_settings>& configured,
                           std::function<void(const std::string&)> known)
    : known_(std::move(known)) {
    for (const auto& [name, settings] : configured) {
        auto& entry = entry_for(name);
        entry.settings = settings;
    }
}

template_entry* template_set::find(const std::string& name) noexcept {
    auto found = entries_.find(name);
    return found == entries_.end() ? nullptr : &found->second;
}

const template_entry* template_set::find(const std::string& name) const noexcept {
    auto found = entries_.find(name);
    return found == entries_.end() ? nullptr : &found->second;
}

template_entry& template_set::entry_for(const std::string& name) {
    auto [it, added] = entries_.try_emplace(name);
    if (added) {
        it->second.name = name;
        known_(name);
    }
    return it->second;
}

template_pool* template_set::promote(template_entry& entry, std::unique_ptr<template_pool> ready) {
    // A version that comes back while its old pool still drains: that pool, with its leased
    // clones and its sequence, is the version again. A second pool would reuse its clone names
    // and its template database.
    for (auto it = entry.draining.begin(); it != entry.draining.end(); ++it) {
        if ((*it)->fingerprint() == ready->fingerprint() &&
            (*it)->template_database() == ready->template_database()) {
            ready = std::move(*it);
            entry.draining.erase(it);
            ready->set_phase(template_pool::phase::ready);
            break;
        }
    }
    for (auto it = entry.others.begin(); it != entry.others.end(); ++it) {
        if ((*it)->fingerprint() == ready->fingerprint()) {
            ready = std::move(*it);
            entry.others.erase(it);
            break;
        }
    }
    template_pool* replaced = nullptr;
    if (entry.current && entry.client) {
        spdlog::info("template={} version {} is the newest now; {} stays side by side", entry.name,
                     short_fingerprint(ready->fingerprint()),
                     short_fingerprint(entry.current->fingerprint()));
        add_other(entry, std::move(entry.current));
    } else if (entry.current) {
        spdlog::info("template={} version {} replaced by {}; draining", entry.name,
                     short_fingerprint(entry.current->fingerprint()),
                     short_fingerprint(ready->fingerprint()));
        replaced = &add_draining(entry, std::move(entry.current));
    }
    entry.current = std::move(ready);
    return replaced;
}

template_pool& template_set::add_draining(template_entry& entry,
                                          std::unique_ptr<template_pool> pool) {
    pool->set_phase(template_pool::phase::draining);
    entry.draining.push_back(std::move(pool));
    return *entry.draining.back();
}

template_pool& template_set::add_other(template_entry& entry, std::unique_ptr<template_pool> pool) {
    pool->set_phase(template_pool::phase::ready);
    entry.others.push_back(std::move(pool));
    return *entry.others.back();
}

void template_set::evict(template_entry& entry, template_pool& pool) {
    for (auto it = entry.others.begin(); it != entry.others.end(); ++it) {
        if (it->get() == &pool) {
            std::unique_ptr<template_pool> evicted = std::move(*it);
            entry.others.erase(it);
            add_draining(entry, std::move(evicted));
            return;
        }
    }
}

template_pool* template_set::serving(template_entry& entry,
                                     const std::string& fingerprint) noexcept {
    if (entry.current && entry.current->fingerprint() == fingerprint) {
        return entry.current.get();
    }
    for (auto& pool : entry.others) {
        if (pool->fingerprint() == fingerprint) {
            return pool.get();
        }
    }
    return nullptr;
}

std::vector<template_pool*> template_set::serving(template_entry& entry) {
    std::vector<template_pool*> pools;
    if (entry.current) {
        pools.push_back(entry.current.get());
    }
    for (auto& pool : entry.others) {
        pools.push_back(pool.get());
    }
    return pools;
}

std::vector<std::string> template_set::retire_empty() {
    std::vector<std::string> databases;
    for (auto& [name, entry] : entries_) {
        auto& draining = entry.draining;
        for (auto it = draining.begin(); it != draining.end();) {
            if ((*it)->size() > 0) {
                ++it;
                continue;
            }
            if (!(*it)->template_database().empty()) {
                spdlog::info("template={} version {} drained", name,
                             short_fingerprint((*it)->fingerprint()));
                databases.push_back((*it)->template_database());
            }
            it = draining.erase(it);
        }
    }
    return databases;
}

template_pool* template_set::pool_of(const std::string& template_name,
                                     const std::string& fingerprint) {
    template_entry* entry = find(template_name);
    if (entry == nullptr) {
        return nullptr;
    }
    if (template_pool* pool = serving(*entry, fingerprint)) {
        return pool;
    }
    for (auto& pool : entry->draining) {
        if (pool->fingerprint() == fingerprint) {
            return pool.get();
        }
    }
    return nullptr;
}

bool template_set::needs_database(const std::string& database, const std::string& prefix) const {
    for (const auto& [name, entry] : entries_) {
        if ((entry.current && entry.current->template_database() == database) ||
            (entry.build && entry.build->database == database)) {
            return true;
        }
        if (entry.building && !entry.wanted_fingerprint.empty() &&
            template_database_name(prefix, entry.name, entry.wanted_fingerprint) == database) {
            return true;
        }
        for (const auto* versions : {&entry.others, &entry.draining}) {
            for (const auto& pool : *versions) {
                if (pool->template_database() == database) {
                    return true;
                }
            }
        }
    }
    return false;
}

std::size_t template_set::databases() const noexcept {
    std::size_t total = 0;
    for (const auto& [name, entry] : entries_) {
        if (entry.current) {
            total += entry.current->size() + 1;
        }
        for (const auto* versions : {&entry.others, &entry.draining}) {
            for (const auto& pool : *versions) {
                total += pool->size() + (pool->template_database().empty() ? 0 : 1);
            }
        }
        total += entry.building || entry.build ? 1 : 0;
    }
    return total;
}

template_status template_set::status(const template_entry& entry, std::size_t waiters,
                                     const lease_settings& default_lease) const {
    template_status status;
    status.name = entry.name;
    status.source = entry.client                                    ? "client"
                    : !entry.settings                               ? "migrations"
                    : entry.settings->kind == source_kind::database ? "database"
                    : entry.settings->kind == source_kind::command  ? "command"
                                                                    : "migrations";
    status.state = entry.state;
    status.error = entry.error;
    if (entry.current) {
        status.fingerprint = entry.current->fingerprint();
    }
    const auto add = [&](const template_pool& pool) {
        status.pool.idle += pool.count(clone_state::idle);
        status.pool.leased += pool.count(clone_state::leased);
        status.pool.creating += pool.count(clone_state::creating);
        status.pool.dropping += pool.count(clone_state::dropping);
        status.pool.kept += pool.count(clone_state::kept);
        status.pool.resetting += pool.count(clone_state::resetting);
    };
    if (entry.current) {
        add(*entry.current);
    }
    for (const auto* versions : {&entry.others, &entry.draining}) {
        for (const auto& pool : *versions) {
            add(*pool);
        }
    }
    if (entry.current) {
        status.versions.push_back(entry.current->fingerprint());
    }
    for (const auto& pool : entry.others) {
        status.versions.push_back(pool->fingerprint());
    }
    status.pool.waiters = waiters;
    const lease_settings& limits = entry.settings ? entry.settings->lease : default_lease;
    status.max_ttl = limits.max_ttl;
    status.max_wait = limits.max_wait;
    status.max_keep = limits.max_keep;
    if (entry.settings) {
        status.pool.min_idle = entry.settings->pool.min_idle;
        status.pool.max_total = entry.settings->pool.max_total;
        status.pool.recycle = entry.settings->pool.recycle;
    }
    return status;
}

void template_set::forget() noexcept {
    for (auto& [name, entry] : entries_) {
        entry.current.reset();
        entry.others.clear();
        entry.draining.clear();
        entry.building = false;
        entry.source_stamp.clear();
        entry.wanted_fingerprint.clear();
        entry.build.reset();
    }
}

const std::string& lease_role_of(const template_entry& entry, const std::string& backend_role) {
    return entry.settings && !entry.settings->lease_role.empty() ? entry.settings->lease_role
                                                                 : backend_role;
}

const std::string& lease_password_of(const template_entry& entry,
                                     const std::string& backend_password) {
    return entry.settings && !entry.settings->lease_role.empty() ? entry.settings->lease_password
                                                                 : backend_password;
}

}  // namespace pglease
