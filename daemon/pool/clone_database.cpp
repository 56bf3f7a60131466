#include "pool/clone_database.hpp"

#include "pg/connection.hpp"
#include "pool/drop_database.hpp"

namespace pglease {

boost::asio::awaitable<reset_baseline> clone_database(pg::connection& conn, const clone_spec& spec,
                                                      catalog_comment comment) {
    const std::string quoted = conn.quote_identifier(spec.name);
    // With per-lease roles the admin owns it, and it is closed until its privileges are set.
    const std::string owned = spec.access.per_lease
                                  ? " ALLOW_CONNECTIONS false"
                                  : " OWNER " + conn.quote_identifier(spec.access.lease_role);
    co_await conn.exec("CREATE DATABASE " + quoted + owned + " TEMPLATE " +
                           conn.quote_identifier(spec.source) + " STRATEGY " + spec.strategy,
                       database_operation_timeout);
    auto lsn = co_await conn.exec("SELECT pg_current_wal_insert_lsn()::text");
    reset_baseline fresh;
    fresh.lsn = lsn.value(0, 0);
    comment.baseline = fresh;
    co_await conn.exec("BEGIN; SET LOCAL synchronous_commit TO local; " +
                       open_database_sql(conn, spec.name, spec.access) + "COMMENT ON DATABASE " +
                       quoted + " IS " + conn.quote_literal(encode_catalog_comment(comment)) +
                       "; COMMIT");
    co_return fresh;
}

}  // namespace pglease
