#include "catalog/catalog_writer.hpp"

#include "pg/connection_pool.hpp"

namespace pglease {

boost::asio::awaitable<void> catalog_writer::write(std::string database, catalog_comment comment) {
    auto conn = co_await connections_.acquire();
    co_await conn->exec("COMMENT ON DATABASE " + conn->quote_identifier(database) + " IS " +
                        conn->quote_literal(encode_catalog_comment(comment)));
}

}  // namespace pglease
