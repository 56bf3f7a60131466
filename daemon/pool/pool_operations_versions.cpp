// Evicting versions of client-initialized templates: those no lease took for their idle time
// once their leases ended, and, when the backend's max_databases leaves no room for a clone workers
// wait for, the least recently leased one that holds no lease. An evicted version drains: its idle
// clones go now, its leased and kept ones when their leases end, its template database after them.
#include <spdlog/spdlog.h>

#include "pool/database_names.hpp"
#include "pool/pool_operations.hpp"
#include "templates/template_set.hpp"

namespace pglease {

namespace {

bool holds_leases(const template_pool& pool) {
    return pool.count(clone_state::leased) + pool.count(clone_state::kept) +
               pool.count(clone_state::resetting) >
           0;
}

}  // namespace

void pool_operations::evict(template_entry& entry, template_pool& pool, bool for_room) {
    const auto unleased = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now() - pool.last_leased);
    spdlog::info("template={} version {} evicted ({}; last leased {}s ago), {} idle clones go now",
                 entry.name, short_fingerprint(pool.fingerprint()),
                 for_room ? "room for a waiting worker under max_databases" : "idle",
                 unleased.count(), pool.count(clone_state::idle));
    metrics_.of(entry.name).evicted(for_room);
    templates_.evict(entry, pool);
    std::vector<clone*> idle(pool.in_state(clone_state::idle).begin(),
                             pool.in_state(clone_state::idle).end());
    for (clone* c : idle) {
        drop(pool, *c);
    }
    for (auto& database : templates_.retire_empty()) {
        drop_database(std::move(database));
    }
}

void pool_operations::evict_idle_versions() {
    const auto now = std::chrono::system_clock::now();
    for (auto& [name, entry] : templates_.entries()) {
        if (!entry.client || !entry.settings) {
            continue;
        }
        std::vector<template_pool*> stale;
        for (const auto& pool : entry.others) {
            if (now - pool->last_leased >= entry.settings->pool.version_idle &&
                !holds_leases(*pool) && hooks_.waiters(*pool, false) == 0) {
                stale.push_back(pool.get());
            }
        }
        for (template_pool* pool : stale) {
            evict(entry, *pool, false);
        }
    }
}

void pool_operations::make_room(const template_pool& wanted) {
    if (in_flight_ > 0 || !clone_drops_.empty() || !database_drops_.empty()) {
        return;  // what runs or is queued may free the room; this runs again once it is done
    }
    template_entry* victim_entry = nullptr;
    template_pool* victim = nullptr;
    for (auto& [name, entry] : templates_.entries()) {
        for (const auto& pool : entry.others) {
            if (pool.get() == &wanted || holds_leases(*pool) || hooks_.waiters(*pool, false) > 0) {
                continue;
            }
            if (victim == nullptr || pool->last_leased < victim->last_leased) {
                victim_entry = &entry;
                victim = pool.get();
            }
        }
    }
    if (victim != nullptr) {
        evict(*victim_entry, *victim, true);
    }
}

}  // namespace pglease
