#include "pg/connection_pool.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pg/pg_error.hpp"

namespace pglease::pg {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

struct connection_pool::waiter {
    asio::steady_timer wakeup;
    bool woken = false;
};

pooled_connection::pooled_connection(connection_pool& pool, connection conn) noexcept
    : pool_(&pool), conn_(std::move(conn)) {}

pooled_connection::pooled_connection(pooled_connection&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)) {
    other.pool_ = nullptr;
}

pooled_connection::~pooled_connection() {
    if (pool_ != nullptr) {
        pool_->give_back(std::move(conn_));
    }
}

connection_pool::connection_pool(std::string conninfo, std::size_t size,
                                 std::chrono::milliseconds timeout)
    : conninfo_(std::move(conninfo)), size_(size), timeout_(timeout) {}

connection_pool::~connection_pool() {
    for (waiter* w : waiters_) {
        w->wakeup.cancel();
    }
}

asio::awaitable<pooled_connection> connection_pool::acquire() {
    const auto deadline = clock::now() + timeout_;
    for (;;) {
        // Connections the server closed while they sat idle are dropped here.
        while (!idle_.empty() && !idle_.front().usable()) {
            idle_.pop_front();
        }
        if (!idle_.empty()) {
            pooled_connection borrowed(*this, std::move(idle_.front()));
            idle_.pop_front();
            ++borrowed_;
            co_return borrowed;
        }
        if (borrowed_ < size_) {
            ++borrowed_;
            try {
                auto conn = co_await connection::connect(conninfo_, timeout_);
                co_return pooled_connection(*this, std::move(conn));
            } catch (...) {
                --borrowed_;
                wake_next();
                throw;
            }
        }
        if (clock::now() >= deadline) {
            throw timeout_error("connection_pool", "no connection free within " +
                                                       std::to_string(timeout_.count()) + " ms");
        }
        waiter me{asio::steady_timer(co_await asio::this_coro::executor, deadline)};
        waiters_.push_back(&me);
        auto position = std::prev(waiters_.end());
        boost::system::error_code ignored;
        co_await me.wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (!me.woken) {
            waiters_.erase(position);
        }
    }
}

void connection_pool::give_back(connection conn) noexcept {
    --borrowed_;
    if (conn.usable()) {
        idle_.push_back(std::move(conn));
    }
    wake_next();
}

void connection_pool::wake_next() noexcept {
    if (!waiters_.empty()) {
        waiter* next = waiters_.front();
        waiters_.pop_front();
        next->woken = true;
        next->wakeup.cancel();
    }
}

void connection_pool::clear_idle() noexcept {
    idle_.clear();
}

}  // namespace pglease::pg
