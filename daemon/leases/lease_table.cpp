#include "leases/lease_table.hpp"

#include "pool/template_pool.hpp"

namespace pglease {

using std::chrono::system_clock;

live_lease& lease_table::add(const lease_record& record, template_pool& pool, clone& c) {
    c.lease_key = record.key;
    live_lease& lease = leases_[record.key];
    lease.record = record;
    lease.pool = &pool;
    lease.db = &c;
    lease.resetting = false;
    deadlines_.add(record.expires_at, deadline_kind::lease_expiry, record.key);
    return lease;
}

live_lease* lease_table::find(const std::string& key) noexcept {
    auto found = leases_.find(key);
    return found == leases_.end() ? nullptr : &found->second;
}

const live_lease* lease_table::find(const std::string& key) const noexcept {
    auto found = leases_.find(key);
    return found == leases_.end() ? nullptr : &found->second;
}

void lease_table::extend(live_lease& lease, system_clock::time_point until) {
    deadlines_.remove(lease.record.expires_at, deadline_kind::lease_expiry, lease.record.key);
    lease.record.expires_at = until;
    deadlines_.add(until, deadline_kind::lease_expiry, lease.record.key);
}

std::optional<live_lease> lease_table::take(const std::string& key) {
    auto found = leases_.find(key);
    if (found == leases_.end()) {
        return std::nullopt;
    }
    live_lease lease = found->second;
    leases_.erase(found);
    deadlines_.remove(lease.record.expires_at, deadline_kind::lease_expiry, key);
    return lease;
}

void lease_table::keep(template_pool& pool, clone& c, system_clock::time_point until) {
    c.kept_until = until;
    kept_[c.name] = &pool;
    deadlines_.add(until, deadline_kind::keep_expiry, c.name);
}

template_pool* lease_table::take_kept(const std::string& name) {
    auto found = kept_.find(name);
    if (found == kept_.end()) {
        return nullptr;
    }
    template_pool* pool = found->second;
    kept_.erase(found);
    return pool;
}

void lease_table::clear() noexcept {
    leases_.clear();
    kept_.clear();
}

}  // namespace pglease
