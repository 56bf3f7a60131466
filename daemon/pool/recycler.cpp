#include "pool/recycler.hpp"

#include "broker/backend_endpoint.hpp"
#include "pg/connection_pool.hpp"
#include "pool/clone_database.hpp"
#include "pool/drop_database.hpp"
#include "pool/pool_operations.hpp"
#include "templates/template_set.hpp"

namespace pglease {

void reclone::recycle(template_pool& pool, clone& c, recycle_cause /*cause*/) {
    operations_.drop(pool, c);
    operations_.schedule();
}

boost::asio::awaitable<refresh_outcome> reclone::refresh(template_pool& pool, clone& c,
                                                         lease_record lease) {
    // Read now: after an await, `c` may be gone.
    const std::string name = c.name;
    const std::string source = pool.template_database();
    const template_entry* entry = templates_.find(pool.template_name());
    const clone_access access = access_of(entry, endpoint_, per_lease_role(endpoint_, lease.key));
    const std::string strategy =
        entry != nullptr && entry->settings ? entry->settings->pool.strategy : "FILE_COPY";
    catalog_comment comment = clone_comment(pool.template_name(), pool.fingerprint(), std::nullopt);
    comment.lease = std::move(lease);
    auto conn = co_await connections_.acquire();
    co_await conn->exec("DROP DATABASE IF EXISTS " + conn->quote_identifier(name) + " WITH (FORCE)",
                        database_operation_timeout);
    // Built outside the co_await expression: GCC 12 miscompiles braced lists there.
    const clone_spec spec{name, access, source, strategy};
    comment.baseline = co_await clone_database(*conn, spec, comment);
    if (clone* same = pool.find(name)) {
        same->baseline = comment.baseline;
    }
    refresh_outcome outcome;
    outcome.result = "reclone";
    outcome.reason = "cloned again";
    co_return outcome;
}

}  // namespace pglease
