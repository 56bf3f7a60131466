#pragma once

// The lease flows of one backend: acquire (waiting in line while the pool grows), grant,
// renew, release by mode, and expiry. The desk is the only one that changes the lease table,
// the waiting line, and a clone between leased, kept and idle; clones whose lease is over go
// to the recycler.

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_life.hpp"
#include "broker/lease_types.hpp"
#include "catalog/catalog_writer.hpp"
#include "config/settings.hpp"
#include "leases/lease_table.hpp"
#include "leases/waiting_line.hpp"
#include "metrics/broker_metrics.hpp"
#include "pool/recycler.hpp"

namespace pglease {

class session_ender;
class recycler;
class template_set;
struct template_entry;

class lease_desk {
  public:
    struct hooks {
        /// Something changed that the refill rule must see.
        std::function<void()> changed;
        /// Drops a clone that must not come back (its version drains).
        std::function<void(template_pool&, clone&)> drop;
        /// True while the backend may hold one more database (to say why an acquire failed).
        std::function<bool()> has_room;
        /// With per-lease roles: a lease's role may no longer connect anywhere, and goes once
        /// its sessions are gone (see live_roles()).
        std::function<void()> role_over;
    };

    lease_desk(boost::asio::any_io_executor executor, const backend_endpoint& endpoint,
               template_set& templates, lease_table& leases, waiting_line& waiting,
               catalog_writer& catalog, recycler& recycling, session_ender& sessions,
               broker_metrics& metrics, backend_life& life, lease_settings default_lease,
               hooks wiring);

    /// Leases a clone of `template_name`, waiting up to the request's wait while the pool grows.
    boost::asio::awaitable<lease_info> acquire(std::string template_name, acquire_request request);
    /// Moves the lease's expiry to now + ttl (capped by the template's max_ttl).
    boost::asio::awaitable<lease_info> renew(std::string key,
                                             std::optional<std::chrono::seconds> ttl);
    /// Ends the lease; the clone is recycled, reused or kept.
    boost::asio::awaitable<void> release(std::string key, release_mode mode,
                                         std::optional<std::chrono::seconds> keep_for);
    /// Makes the lease's database fresh again, for the same holder (a sticky lease): reset in
    /// place, or cloned again under its name. Returns the lease and what was done.
    boost::asio::awaitable<std::pair<lease_info, refresh_outcome>> reset(std::string key);
    /// The lease's deadline fell due: its sessions end and its clone is recycled.
    void lease_expired(const std::string& key);
    /// A kept clone's time is over: it is recycled.
    void keep_expired(const std::string& name);

    /// Takes a clone that became free (created, or reset): the longest waiting worker gets it,
    /// else it waits idle; a clone of a draining version is dropped.
    void offer(template_pool& pool, clone& c);
    /// Takes a clone that sessions may still be connected to (back from reuse, or found so at
    /// a start): offered once none is left, recycled when one will not end. Its pool holds it
    /// as resetting meanwhile.
    void offer_once_settled(template_pool& pool, clone& c);
    /// Hands idle clones to waiting workers (after memory was rebuilt from the catalog).
    void serve_waiters();

    /// The live lease stored under `key`, described, if any.
    std::optional<lease_info> find(const std::string& key) const;
    /// Every live lease, described.
    std::vector<lease_info> all() const;
    /// With per-lease roles, the roles that must stay: those of live leases (granted, or being
    /// granted) and of kept clones. Any other of the backend's lease roles may be dropped once
    /// its sessions are gone.
    std::set<std::string> live_roles() const;

  private:
    lease_info describe(const live_lease& lease) const;
    /// With per-lease roles: the role of the lease stored under `key` ("" without).
    std::string role_of(const std::string& key) const;
    /// With per-lease roles, what the grant of lease `id` on `database` commits with its
    /// comment: the lease's role, allowed to connect there. Nothing without.
    catalog_writer::statements role_granted(const std::string& id, const template_entry& entry,
                                            const std::string& database) const;
    /// With per-lease roles, what takes from `role` (the lease's) its right to connect to
    /// `database`: in the transaction that records the end of its lease, so that it cannot
    /// connect once the clone is another's. Nothing without.
    static catalog_writer::statements role_revoked(std::string role, std::string database);

    /// Notes that a lease took a clone of `pool` at `at` (recorded in the catalog for
    /// client-initialized templates, now and then).
    void note_leased(const template_entry& entry, template_pool& pool,
                     std::chrono::system_clock::time_point at);
    boost::asio::awaitable<void> record_leased(std::string database, catalog_comment comment);
    /// Throws why no clone of `entry`'s version `named` can be had: still building (503), or
    /// no such version (404).
    [[noreturn]] void refuse_version(const template_entry& entry, const std::string& named) const;
    [[noreturn]] void refuse(const template_entry& entry) const;
    boost::asio::awaitable<std::optional<lease_info>> grant(template_entry& entry,
                                                            template_pool& pool, clone& c,
                                                            const acquire_request& request,
                                                            std::chrono::seconds ttl);
    boost::asio::awaitable<std::optional<lease_info>> after_restart(std::string id, std::string key,
                                                                    bool recorded);
    lease_settings limits_of(const std::string& template_name) const;
    boost::asio::awaitable<void> end_sessions_now(std::string database);
    /// offer_once_settled's wait, off the catalog connections.
    boost::asio::awaitable<void> settle(template_pool& pool, std::string database);

    boost::asio::any_io_executor executor_;
    const backend_endpoint& endpoint_;
    template_set& templates_;
    lease_table& leases_;
    waiting_line& waiting_;
    catalog_writer& catalog_;
    recycler& recycler_;
    session_ender& sessions_;
    broker_metrics& metrics_;
    backend_life& life_;
    lease_settings default_lease_;
    hooks hooks_;
    /// The roles of grants whose catalog write is under way: committed, perhaps, but not yet
    /// in the lease table.
    std::set<std::string> granting_roles_;
};

}  // namespace pglease
