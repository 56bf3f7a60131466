#pragma once

// Writes the catalog: the comment on a managed database is the broker's whole state for it. The
// writer owns no state; its connections are the shard's catalog pool, which a slow CREATE
// DATABASE never holds.

#include <string>

#include <boost/asio/awaitable.hpp>

#include "catalog/catalog_comment.hpp"

namespace pglease {

namespace pg {
class connection_pool;
}

class catalog_writer {
  public:
    explicit catalog_writer(pg::connection_pool& connections) : connections_(connections) {}

    /// Records `comment` on `database`; returns once the server has it.
    boost::asio::awaitable<void> write(std::string database, catalog_comment comment);

  private:
    pg::connection_pool& connections_;
};

}  // namespace pglease
