#pragma once

// Writes the catalog: the comment on a managed database is the broker's whole state for it. It
// owns the writes waiting for a connection: those that queue up while every catalog connection
// is busy go together, as one transaction in one round trip, when a connection frees (a group
// commit). Its connections are the shard's catalog pool, which a slow CREATE DATABASE never
// holds.

#include <cstddef>
#include <deque>
#include <exception>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/backend_life.hpp"
#include "catalog/catalog_comment.hpp"

namespace pglease {

namespace pg {
class connection;
class connection_pool;
class result;
}  // namespace pg

class catalog_writer {
  public:
    /// At most `writers` round trips at once (the connections it may use of `connections`).
    catalog_writer(boost::asio::any_io_executor executor, pg::connection_pool& connections,
                   std::size_t writers, backend_life& life, std::string backend);
    catalog_writer(const catalog_writer&) = delete;
    catalog_writer& operator=(const catalog_writer&) = delete;

    /// Records `comment` on `database`; returns once the server has committed it. Throws the
    /// server's error for this write alone. With `end_sessions`, the sessions on `database` are
    /// signaled to end in the same round trip, and it returns whether there were any (then
    /// session_ender::wait_ended waits for them to be gone).
    boost::asio::awaitable<bool> write(std::string database, catalog_comment comment,
                                       bool end_sessions = false);

  private:
    struct pending {
        explicit pending(const boost::asio::any_io_executor& executor)
            : done(executor, boost::asio::steady_timer::time_point::max()) {}
        std::string database;
        std::string text;
        bool end_sessions = false;
        bool had_sessions = false;
        boost::asio::steady_timer done;
        std::exception_ptr failure;
        /// Written, or failed: the flush that took it is done with it.
        bool finished = false;
    };

    boost::asio::awaitable<void> flush();
    static std::string batch_query(pg::connection& conn, const std::vector<pending*>& batch);
    static void note_signaled(const pg::result& rows, const std::vector<pending*>& batch);

    boost::asio::any_io_executor executor_;
    pg::connection_pool& connections_;
    std::size_t writers_;
    backend_life& life_;
    std::string backend_;
    std::deque<pending*> queue_;
    std::size_t flushing_ = 0;
};

}  // namespace pglease
