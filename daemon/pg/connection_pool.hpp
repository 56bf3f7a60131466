#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <list>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "pg/connection.hpp"

namespace pglease::pg {

class connection_pool;

/// A connection borrowed from a pool; goes back (or, if broken, away) when destroyed.
class pooled_connection {
  public:
    pooled_connection(connection_pool& pool, connection conn) noexcept;
    pooled_connection(pooled_connection&& other) noexcept;
    pooled_connection& operator=(pooled_connection&&) = delete;
    pooled_connection(const pooled_connection&) = delete;
    pooled_connection& operator=(const pooled_connection&) = delete;
    ~pooled_connection();

    connection& operator*() noexcept { return conn_; }
    connection* operator->() noexcept { return &conn_; }

  private:
    connection_pool* pool_;
    connection conn_;
};

/// Up to `size` connections to one conninfo, opened on demand and reused; callers beyond that
/// wait in FIFO order. Single-threaded, like everything on the loop.
class connection_pool {
  public:
    connection_pool(std::string conninfo, std::size_t size, std::chrono::milliseconds timeout);
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;
    ~connection_pool();

    /// A connection within `timeout`; throws timeout_error when none frees up, connection_error
    /// when a new one cannot be opened.
    boost::asio::awaitable<pooled_connection> acquire();

    /// Connections open now, idle or lent out.
    std::size_t open() const noexcept { return idle_.size() + borrowed_; }

    /// Closes idle connections (after the server restarted, they are all dead).
    void clear_idle() noexcept;

  private:
    friend class pooled_connection;
    void give_back(connection conn) noexcept;
    void wake_next() noexcept;

    struct waiter;
    std::string conninfo_;
    std::size_t size_;
    std::chrono::milliseconds timeout_;
    std::deque<connection> idle_;
    std::size_t borrowed_ = 0;
    std::list<waiter*> waiters_;
};

}  // namespace pglease::pg
