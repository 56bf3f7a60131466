#pragma once

// Writes the catalog: the comment on a managed database is the broker's whole state for it. It
// owns the writes waiting for a connection: those that queue up while every catalog connection
// is busy go together, as one transaction in one round trip, when a connection frees (a group
// commit). Its connections are the shard's catalog pool, which a slow CREATE DATABASE never
// holds.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/backend_life.hpp"
#include "catalog/catalog_comment.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

namespace pg {
class connection;
class connection_pool;
class result;
}  // namespace pg

/// A write refused because this broker no longer holds the backend's lock (its lock session
/// is gone: another broker may serve the backend now). Nothing of the write was committed.
class fenced_error : public pg::pg_error {
  public:
    explicit fenced_error(std::string message) : pg_error("fence", std::move(message)) {}
};

class catalog_writer {
  public:
    /// At most `writers` round trips at once (the connections it may use of `connections`).
    catalog_writer(boost::asio::any_io_executor executor, pg::connection_pool& connections,
                   std::size_t writers, backend_life& life, std::string backend);
    catalog_writer(const catalog_writer&) = delete;
    catalog_writer& operator=(const catalog_writer&) = delete;

    /// Statements that commit together with a write, or not at all: built for the connection
    /// that runs them.
    using statements = std::function<std::string(const pg::connection&)>;

    /// Records `comment` on `database`; returns once the server has committed it. Throws the
    /// server's error for this write alone. With `end_sessions`, the sessions on `database` are
    /// signaled to end in the same round trip, and it returns whether there were any (then
    /// session_ender::wait_ended waits for them to be gone). `also` runs before the comment,
    /// in its transaction.
    boost::asio::awaitable<bool> write(std::string database, catalog_comment comment,
                                       bool end_sessions = false, statements also = {});

    /// Fences every write from now on: it commits only while the broker's lock session, which
    /// holds advisory lock `key` exclusively, lives (checked in the write's own transaction);
    /// else the write fails with fenced_error and `lost` is told. Called each time the lock is
    /// taken.
    void fence(std::int64_t key, std::function<void()> lost);

  private:
    struct pending {
        explicit pending(const boost::asio::any_io_executor& executor)
            : done(executor, boost::asio::steady_timer::time_point::max()) {}
        std::string database;
        std::string text;
        statements also;
        bool end_sessions = false;
        bool had_sessions = false;
        boost::asio::steady_timer done;
        std::exception_ptr failure;
        /// Written, or failed: the flush that took it is done with it.
        bool finished = false;
    };

    boost::asio::awaitable<void> flush();
    std::string batch_query(pg::connection& conn, const std::vector<pending*>& batch) const;
    static void note_signaled(const pg::result& rows, const std::vector<pending*>& batch);

    boost::asio::any_io_executor executor_;
    pg::connection_pool& connections_;
    std::size_t writers_;
    backend_life& life_;
    std::string backend_;
    std::deque<pending*> queue_;
    std::size_t flushing_ = 0;
    /// The statement that fails a batch whose broker lost the lock ("" until fence()).
    std::string fence_;
    std::function<void()> lost_;
};

}  // namespace pglease
