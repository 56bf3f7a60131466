#pragma once

// Owns the live leases of one backend and the clones kept after their lease for inspection,
// with their expiry deadlines. Only the lease desk changes them (grant, renew, release, expiry);
// recovery adopts what the catalog says through the same calls.

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "catalog/catalog_comment.hpp"
#include "leases/deadline_queue.hpp"

namespace pglease {

class template_pool;
struct clone;

/// A lease a worker holds now: its record (as the catalog keeps it) and its clone.
struct live_lease {
    lease_record record;
    template_pool* pool = nullptr;
    clone* db = nullptr;
    /// Its holder asked for its database to be reset, and that is under way.
    bool resetting = false;
};

/// Live leases by key (SHA-256 of the id) and kept clones by name; each with its deadline.
class lease_table {
  public:
    explicit lease_table(deadline_queue& deadlines) : deadlines_(deadlines) {}
    lease_table(const lease_table&) = delete;
    lease_table& operator=(const lease_table&) = delete;

    /// Makes a lease live on `c` and arms its expiry.
    live_lease& add(const lease_record& record, template_pool& pool, clone& c);
    /// The live lease stored under `key`, or nullptr.
    live_lease* find(const std::string& key) noexcept;
    const live_lease* find(const std::string& key) const noexcept;
    /// Moves the lease's expiry to `until` and re-arms it.
    void extend(live_lease& lease, std::chrono::system_clock::time_point until);
    /// Ends the lease stored under `key` (released or expired): it and its deadline are gone.
    std::optional<live_lease> take(const std::string& key);

    /// Keeps `c` (its lease ended) until `until`, when its keep deadline falls due.
    void keep(template_pool& pool, clone& c, std::chrono::system_clock::time_point until);
    /// The pool of the kept clone `name`, forgotten here; nullptr when it is not kept.
    template_pool* take_kept(const std::string& name);
    /// The kept clones' pools, by clone name.
    const std::map<std::string, template_pool*>& kept() const noexcept { return kept_; }

    /// Every live lease, by key.
    const std::map<std::string, live_lease>& all() const noexcept { return leases_; }
    std::size_t size() const noexcept { return leases_.size(); }
    /// Forgets every lease and kept clone (their deadlines go with the queue's).
    void clear() noexcept;

  private:
    deadline_queue& deadlines_;
    std::map<std::string, live_lease> leases_;
    std::map<std::string, template_pool*> kept_;
};

}  // namespace pglease
