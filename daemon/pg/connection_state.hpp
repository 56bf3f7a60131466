#pragma once

// What one connection holds (libpq's PGconn and the socket the reactor waits on) and the waits
// every statement makes: private to pg/connection.cpp and pg/connection_copy.cpp.

#include <array>
#include <memory>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "pg/connection.hpp"
#include "pg/pg_error.hpp"

namespace pglease::pg {
namespace connection_detail {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using clock = std::chrono::steady_clock;
using descriptor = asio::posix::stream_descriptor;

// How long a statement may take to end after its deadline once the server was asked to cancel it.
inline constexpr std::chrono::milliseconds cancel_grace{5'000};

struct finish_connection {
    void operator()(PGconn* raw) const noexcept { PQfinish(raw); }
};
struct free_cancel {
    void operator()(PGcancel* raw) const noexcept { PQfreeCancel(raw); }
};
struct free_memory {
    void operator()(char* raw) const noexcept { PQfreemem(raw); }
};

inline std::string trimmed(const char* text) {
    std::string out = text ? text : "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
        out.pop_back();
    }
    return out;
}

inline std::string result_message(const PGresult* raw) {
    const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
    if (!primary) {
        return trimmed(PQresultErrorMessage(raw));
    }
    std::string text = primary;
    if (const char* detail = PQresultErrorField(raw, PG_DIAG_MESSAGE_DETAIL)) {
        text += " DETAIL: " + std::string(detail);
    }
    if (const char* hint = PQresultErrorField(raw, PG_DIAG_MESSAGE_HINT)) {
        text += " HINT: " + std::string(hint);
    }
    return text;
}

inline void log_notice(void* /*context*/, const PGresult* raw) {
    spdlog::debug("postgres notice: {}", result_message(raw));
}

// PQcancel blocks while it connects to the server, so it runs on a thread of its own. It touches
// no broker state: it only carries the PGcancel object it is given.
inline asio::thread_pool& cancel_pool() {
    static asio::thread_pool pool{1};
    return pool;
}

enum class readiness { readable, writable, deadline };

}  // namespace connection_detail

// This header is private to the connection's own files.
using namespace connection_detail;

struct connection::state {
    explicit state(const asio::any_io_executor& executor) : socket(executor) {}
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() { close(); }

    // libpq owns the socket: the descriptor is released, never closed, before PQfinish.
    void close() noexcept {
        if (socket.is_open()) {
            socket.release();
        }
        conn.reset();
    }

    // Registers libpq's current socket with the reactor. Called after every PQconnectPoll, since
    // libpq may have closed one socket and opened another (possibly under the same number).
    void attach_socket(const char* call) {
        if (socket.is_open()) {
            socket.release();
        }
        const int fd = PQsocket(conn.get());
        if (fd < 0) {
            throw connection_error(call, "libpq has no socket: " + error_message());
        }
        socket.assign(fd);
    }

    std::string error_message() const { return trimmed(PQerrorMessage(conn.get())); }

    [[noreturn]] void fail(const char* call) {
        std::string message = error_message();
        close();
        throw connection_error(call, message.empty() ? "connection lost" : message);
    }

    asio::awaitable<readiness> wait(bool want_read, bool want_write, clock::time_point deadline) {
        if (want_read != want_write) {
            co_return co_await wait_one(want_read ? descriptor::wait_read : descriptor::wait_write,
                                        deadline);
        }
        asio::steady_timer timer(socket.get_executor(), deadline);
        auto read = [&] { return socket.async_wait(descriptor::wait_read, asio::use_awaitable); };
        auto write = [&] { return socket.async_wait(descriptor::wait_write, asio::use_awaitable); };
        auto expire = [&] { return timer.async_wait(asio::use_awaitable); };
        auto which = co_await (read() || write() || expire());
        co_return which.index() == 0 ? readiness::readable
        : which.index() == 1         ? readiness::writable
                                     : readiness::deadline;
    }

    // One direction, the wait of nearly every statement: the socket's own wait, cancelled by a
    // timer at the deadline. A parallel group would start two child coroutines and throw in the
    // loser on every wait.
    asio::awaitable<readiness> wait_one(descriptor::wait_type what, clock::time_point deadline) {
        struct expiry {
            asio::cancellation_signal signal;
            bool waiting = true;
            bool fired = false;
        };
        // The timer's handler may run after this frame is gone: it holds only this.
        const auto shared = std::make_shared<expiry>();
        // Cancelling the awaiting coroutine cancels the wait, as it would without our own slot.
        asio::cancellation_state outer = co_await asio::this_coro::cancellation_state;
        if (outer.slot().is_connected()) {
            outer.slot().assign(
                [shared](asio::cancellation_type type) { shared->signal.emit(type); });
        }
        asio::steady_timer timer(socket.get_executor(), deadline);
        timer.async_wait([shared](const boost::system::error_code& ec) {
            if (!ec && shared->waiting) {
                shared->fired = true;
                shared->signal.emit(asio::cancellation_type::terminal);
            }
        });
        auto [ec] = co_await socket.async_wait(
            what, asio::bind_cancellation_slot(shared->signal.slot(),
                                               asio::as_tuple(asio::use_awaitable)));
        shared->waiting = false;
        if (outer.slot().is_connected()) {
            outer.slot().clear();
        }
        if (ec && shared->fired) {
            co_return readiness::deadline;
        }
        if (ec == asio::error::operation_aborted) {
            throw boost::system::system_error(ec, "waiting for the server");
        }
        // On any other error libpq's next call finds what is wrong with the socket.
        co_return what == descriptor::wait_read ? readiness::readable : readiness::writable;
    }

    // Sends what libpq has buffered and reads until a result is ready. False at the deadline.
    asio::awaitable<bool> wait_until_idle(clock::time_point deadline) {
        for (;;) {
            const int flushed = PQflush(conn.get());
            if (flushed < 0) {
                fail("PQflush");
            }
            if (flushed == 1) {
                // The server may be blocked writing to us: read while waiting to write.
                auto ready = co_await wait(true, true, deadline);
                if (ready == readiness::deadline) {
                    co_return false;
                }
                if (ready == readiness::readable && PQconsumeInput(conn.get()) == 0) {
                    fail("PQconsumeInput");
                }
                continue;
            }
            if (PQisBusy(conn.get()) == 0) {
                co_return true;
            }
            if (co_await wait(true, false, deadline) == readiness::deadline) {
                co_return false;
            }
            if (PQconsumeInput(conn.get()) == 0) {
                fail("PQconsumeInput");
            }
        }
    }

    // Asks the server to cancel the running statement without waiting for the answer.
    void request_cancel() {
        std::unique_ptr<PGcancel, free_cancel> cancel(PQgetCancel(conn.get()));
        if (!cancel) {
            return;
        }
        asio::post(cancel_pool(), [cancel = std::move(cancel), pid = pid] {
            std::array<char, 256> error{};
            if (PQcancel(cancel.get(), error.data(), static_cast<int>(error.size())) == 0) {
                spdlog::warn("PQcancel for backend pid={} failed: {}", pid, error.data());
            }
        });
    }

    std::unique_ptr<PGconn, finish_connection> conn;
    descriptor socket;
    int pid = 0;
};

}  // namespace pglease::pg
