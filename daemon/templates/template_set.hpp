#pragma once

// Owns the templates of one backend: their settings, the version each serves (a pool of
// clones), the versions that drain, their state, and how their source's builds fare. Source and
// client builds record their progress on an entry; versions change only through promote() and
// retire_empty(); pools change their clones through pool operations and the lease desk.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/lease_types.hpp"
#include "config/settings.hpp"
#include "pool/template_pool.hpp"
#include "templates/template_state.hpp"

namespace pglease {

/// A client's right to build one version: where, and until when.
struct client_build {
    std::string fingerprint;  // as the client gave it
    std::string key;          // SHA-256 of the build id
    std::string database;
    std::chrono::system_clock::time_point expires_at;
    std::chrono::steady_clock::time_point started;
    bool finishing = false;  // finalize or abort under way
};

/// One template on one backend.
struct template_entry {
    std::string name;
    /// Built by clients through the API rather than from a configured source.
    bool client = false;
    /// std::nullopt for a template the catalog knows but the configuration no longer names.
    std::optional<template_settings> settings;
    /// The ready version leases come from.
    std::unique_ptr<template_pool> current;
    /// A client-initialized template's older versions, side by side with the newest: each still
    /// serves the leases that name it by fingerprint, until it is evicted.
    std::vector<std::unique_ptr<template_pool>> others;
    /// Older versions whose clones are still leased or kept.
    std::vector<std::unique_ptr<template_pool>> draining;
    template_state state = template_state::building;
    /// The last build failure.
    std::string error;

    // A configured source: the version it asks for, and how its builds fare.
    std::string wanted_fingerprint;
    std::string source_stamp;
    bool building = false;
    int failures = 0;
    std::chrono::steady_clock::time_point retry_at{};

    // A client-initialized template: the build under way.
    std::optional<client_build> build;
};

/// The templates of one backend, by name.
class template_set {
  public:
    /// `configured`: the templates of the configuration; `known` is told each template name
    /// the moment it becomes known (metrics series start at zero then).
    template_set(const std::map<std::string, template_settings>& configured,
                 std::function<void(const std::string&)> known);

    template_entry* find(const std::string& name) noexcept;
    const template_entry* find(const std::string& name) const noexcept;
    /// The entry of `name`, made when it is new (a template the catalog or a client names).
    template_entry& entry_for(const std::string& name);
    std::map<std::string, template_entry>& entries() noexcept { return entries_; }
    const std::map<std::string, template_entry>& entries() const noexcept { return entries_; }

    /// Makes `ready` the version leases of `entry` get. A version coming back while it drains
    /// (A -> B -> A) takes its old pool again. Returns the version it replaced, now draining (its
    /// idle clones are the caller's to drop), or nullptr: a client-initialized template keeps
    /// the replaced version side by side (in `others`).
    template_pool* promote(template_entry& entry, std::unique_ptr<template_pool> ready);
    /// Adds a version that serves no new leases; it goes once its clones are gone.
    template_pool& add_draining(template_entry& entry, std::unique_ptr<template_pool> pool);
    /// Adds an older version of a client-initialized template, side by side with the newest.
    template_pool& add_other(template_entry& entry, std::unique_ptr<template_pool> pool);
    /// Evicts `pool`, one of `entry`'s others: it drains (its idle clones are the caller's to
    /// drop) and goes with its template database once its leases end.
    void evict(template_entry& entry, template_pool& pool);
    /// Forgets draining versions with no clone left; returns their template databases to drop.
    std::vector<std::string> retire_empty();

    /// The version of `entry` leases may get whose fingerprint is `fingerprint` (the newest, or
    /// one of the others), or nullptr.
    static template_pool* serving(template_entry& entry, const std::string& fingerprint) noexcept;
    /// The versions of `entry` that serve leases: the newest first, then the others.
    static std::vector<template_pool*> serving(template_entry& entry);
    /// The pool of `template_name`'s version `fingerprint`, or nullptr.
    template_pool* pool_of(const std::string& template_name, const std::string& fingerprint);
    /// True when `database` is a template database some version or build still needs.
    bool needs_database(const std::string& database, const std::string& prefix) const;
    /// Databases the versions and builds hold on the backend: templates and every clone.
    std::size_t databases() const noexcept;
    /// The template's state and pool, with `waiters` workers waiting for it.
    template_status status(const template_entry& entry, std::size_t waiters,
                           const lease_settings& default_lease) const;

    /// Forgets every version and build (the backend was lost): settings stay.
    void forget() noexcept;

  private:
    std::map<std::string, template_entry> entries_;
    std::function<void(const std::string&)> known_;
};

/// The role leases of `entry` hand out: its own lease_role, else the backend's. It owns the
/// template database and every clone, so workers may create and alter anything in them.
const std::string& lease_role_of(const template_entry& entry, const std::string& backend_role);
/// The password of lease_role_of().
const std::string& lease_password_of(const template_entry& entry,
                                     const std::string& backend_password);

}  // namespace pglease
