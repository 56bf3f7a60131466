#include "pool/session_ender.hpp"

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pg/connection_pool.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string session_ender::signal_statement(const std::string& names) {
    // pg_stat_get_db_numbackends() counts a database's sessions from the server's live backend
    // table, cheaply; only where it finds some are they listed, from pg_stat_get_activity()
    // rather than the pg_stat_activity view, whose joins cost more to plan than the rest costs
    // to run. The signal is pg_terminate_backend without its timeout: with one, PostgreSQL
    // looks again only every 100 ms, and a backend still exiting after its client closed costs
    // that much. It is sent from a select list behind OFFSET 0: in a WHERE clause the planner
    // may call it before the other conditions, on every session of the server.
    return "SELECT d.datname, (SELECT coalesce(array_agg(pid)::text, '{}') FROM ("
           "    SELECT a.pid, pg_terminate_backend(a.pid) AS signaled "
           "    FROM pg_stat_get_activity(NULL) a "
           "    WHERE a.datid = d.oid AND a.pid <> pg_backend_pid() OFFSET 0) s WHERE signaled) "
           "FROM pg_database d WHERE d.datname IN (" +
           names + ") AND pg_stat_get_db_numbackends(d.oid) > 0";
}

std::string session_ender::count_statement(const std::string& names) {
    return "SELECT d.datname FROM pg_database d WHERE d.datname IN (" + names +
           ") AND pg_stat_get_db_numbackends(d.oid) > 0";
}

asio::awaitable<bool> session_ender::end_sessions(std::string database,
                                                  std::chrono::milliseconds patience) {
    {
        auto conn = co_await connections_.acquire();
        const std::string name = conn->quote_literal(database);
        // Most often none is left: the count alone costs a fraction of the signal to plan.
        std::string count = count_statement(name);
        const auto counted = co_await conn->exec(std::move(count));
        if (counted.rows() == 0) {
            co_return true;
        }
        std::string signal = signal_statement(name);
        const auto signaled = co_await conn->exec(std::move(signal));
        if (signaled.rows() == 0) {
            co_return true;
        }
    }
    co_return co_await wait_ended(std::move(database), patience);
}

asio::awaitable<bool> session_ender::wait_ended(std::string database,
                                                std::chrono::milliseconds patience) {
    const auto give_up_at = steady::now() + patience;
    auto pause = std::chrono::microseconds(100);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        {
            // Held for the query only: the waits of several clones share the pool's connections.
            auto conn = co_await connections_.acquire();
            // Any session, not only those signaled: a client that connects again after its
            // release must not find itself on the next worker's database.
            auto left = co_await conn->query(
                "SELECT coalesce(sum(pg_stat_get_db_numbackends(oid)), 0) FROM pg_database "
                "WHERE datname = $1",
                database);
            if (left.value(0, 0) == "0") {
                co_return true;
            }
        }
        if (steady::now() >= give_up_at) {
            co_return false;
        }
        timer.expires_after(pause);
        boost::system::error_code ignored;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        pause = std::min<std::chrono::microseconds>(pause * 2, 5ms);
    }
}

}  // namespace pglease
