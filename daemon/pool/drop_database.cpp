#include "pool/drop_database.hpp"

#include "pg/connection.hpp"

namespace pglease {

boost::asio::awaitable<bool> drop_database(pg::connection& conn, std::string name,
                                           std::function<bool()> still_needed) {
    const std::string quoted = conn.quote_identifier(name);
    // A template cannot be dropped while marked one; an invalid database (an interrupted drop)
    // cannot be altered at all (the server ends the session), only dropped.
    auto kind = co_await conn.query(
        "SELECT datistemplate AND datconnlimit <> -2 FROM pg_database WHERE datname = $1", name);
    // Checked with no wait before the DROP.
    if (still_needed && still_needed()) {
        co_return false;
    }
    if (kind.rows() == 1 && kind.value(0, 0) == "t") {
        co_await conn.exec("ALTER DATABASE " + quoted + " IS_TEMPLATE false");
    }
    co_await conn.exec("DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)",
                       database_operation_timeout);
    co_return true;
}

}  // namespace pglease
