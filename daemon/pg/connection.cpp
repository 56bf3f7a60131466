#include "pg/connection.hpp"

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

#include "pg/pg_error.hpp"

namespace pglease::pg {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using clock = std::chrono::steady_clock;
using descriptor = asio::posix::stream_descriptor;

// How long a statement may take to end after its deadline once the server was asked to cancel it.
constexpr std::chrono::milliseconds cancel_grace{5'000};

struct finish_connection {
    void operator()(PGconn* raw) const noexcept { PQfinish(raw); }
};
struct free_cancel {
    void operator()(PGcancel* raw) const noexcept { PQfreeCancel(raw); }
};
struct free_memory {
    void operator()(char* raw) const noexcept { PQfreemem(raw); }
};

std::string trimmed(const char* text) {
    std::string out = text ? text : "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
        out.pop_back();
    }
    return out;
}

std::string result_message(const PGresult* raw) {
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

void log_notice(void* /*context*/, const PGresult* raw) {
    spdlog::debug("postgres notice: {}", result_message(raw));
}

// PQcancel blocks while it connects to the server, so it runs on a thread of its own. It touches
// no broker state: it only carries the PGcancel object it is given.
asio::thread_pool& cancel_pool() {
    static asio::thread_pool pool{1};
    return pool;
}

enum class readiness { readable, writable, deadline };

}  // namespace

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

connection::connection(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}
connection::connection() noexcept = default;
connection::connection(connection&& other) noexcept = default;
connection& connection::operator=(connection&& other) noexcept = default;
connection::~connection() = default;

asio::awaitable<connection> connection::connect(std::string conninfo,
                                                std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    auto s = std::make_unique<state>(co_await asio::this_coro::executor);
    s->conn.reset(PQconnectStart(conninfo.c_str()));
    if (!s->conn) {
        throw connection_error("PQconnectStart", "out of memory");
    }
    if (PQstatus(s->conn.get()) == CONNECTION_BAD) {
        throw connection_error("PQconnectStart", s->error_message());
    }
    // Per libpq's protocol, behave as if PQconnectPoll had last asked to wait for writing.
    PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
    while (poll != PGRES_POLLING_OK) {
        if (poll == PGRES_POLLING_FAILED) {
            throw connection_error("PQconnectPoll", s->error_message());
        }
        s->attach_socket("PQconnectPoll");
        const bool want_read = poll == PGRES_POLLING_READING;
        if (co_await s->wait(want_read, !want_read, deadline) == readiness::deadline) {
            const char* host = PQhost(s->conn.get());
            const char* port = PQport(s->conn.get());
            throw timeout_error("PQconnectPoll",
                                "no connection to host=" + std::string(host ? host : "") +
                                    " port=" + std::string(port ? port : "") + " within " +
                                    std::to_string(timeout.count()) + " ms");
        }
        poll = PQconnectPoll(s->conn.get());
    }
    if (PQsetnonblocking(s->conn.get(), 1) != 0) {
        throw connection_error("PQsetnonblocking", s->error_message());
    }
    PQsetNoticeReceiver(s->conn.get(), &log_notice, nullptr);
    s->pid = PQbackendPID(s->conn.get());
    s->attach_socket("PQsocket");
    co_return connection(std::move(s));
}

asio::awaitable<result> connection::exec(std::string sql, std::chrono::milliseconds timeout) {
    return run(std::move(sql), std::nullopt, timeout);
}

asio::awaitable<result> connection::exec(std::string sql, params values,
                                         std::chrono::milliseconds timeout) {
    return run(std::move(sql), std::move(values), timeout);
}

asio::awaitable<result> connection::run(std::string sql, std::optional<params> values,
                                        std::chrono::milliseconds timeout) {
    const char* send_call = values ? "PQsendQueryParams" : "PQsendQuery";
    if (!usable()) {
        throw connection_error(send_call, "connection is closed");
    }
    state& s = *state_;
    PGconn* conn = s.conn.get();
    int sent = 0;
    if (values) {
        std::vector<const char*> pointers;
        pointers.reserve(values->size());
        for (const auto& value : *values) {
            pointers.push_back(value ? value->c_str() : nullptr);
        }
        sent = PQsendQueryParams(conn, sql.c_str(), static_cast<int>(pointers.size()), nullptr,
                                 pointers.data(), nullptr, nullptr, 0);
    } else {
        sent = PQsendQuery(conn, sql.c_str());
    }
    if (sent == 0) {
        s.fail(send_call);
    }

    try {
        auto limit = clock::now() + timeout;
        bool cancelled = false;
        std::optional<result> last;
        std::string error_call;
        std::string error_text;
        std::string error_state;
        for (;;) {
            if (!co_await s.wait_until_idle(limit)) {
                if (cancelled) {
                    s.close();
                    throw timeout_error(send_call, "statement ran past its deadline of " +
                                                       std::to_string(timeout.count()) +
                                                       " ms and did not stop when cancelled; "
                                                       "connection closed");
                }
                cancelled = true;
                s.request_cancel();
                limit = clock::now() + cancel_grace;
                continue;
            }
            PGresult* raw = PQgetResult(conn);
            if (raw == nullptr) {
                break;
            }
            result current(raw);
            switch (PQresultStatus(raw)) {
                case PGRES_FATAL_ERROR:
                case PGRES_BAD_RESPONSE:
                case PGRES_NONFATAL_ERROR:
                    if (error_call.empty()) {
                        error_call = "PQgetResult";
                        error_text = result_message(raw);
                        const char* state_code = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
                        error_state = state_code ? state_code : "";
                    }
                    break;
                case PGRES_COPY_IN:
                case PGRES_COPY_OUT:
                case PGRES_COPY_BOTH:
                    // COPY is not spoken here; the session is in a state we cannot leave cleanly.
                    s.close();
                    throw server_error("PQgetResult", "COPY is not supported on this connection");
                default:
                    last = std::move(current);
                    break;
            }
        }
        if (PQstatus(conn) == CONNECTION_BAD) {
            std::string message = error_text.empty() ? s.error_message() : error_text;
            s.close();
            throw connection_error("PQgetResult", message, error_state);
        }
        if (cancelled) {
            throw timeout_error(send_call,
                                "statement ran past its deadline of " +
                                    std::to_string(timeout.count()) + " ms and was cancelled",
                                "57014");
        }
        if (!error_call.empty()) {
            throw_server_error(error_call, error_text, error_state);
        }
        co_return last ? std::move(*last) : result{};
    } catch (const pg_error&) {
        throw;
    } catch (...) {
        // The awaiting coroutine was cancelled mid-statement: the session state is unknown.
        s.close();
        throw;
    }
}

namespace {

// The outcome of the statement after its COPY data: the rows it copied, or the server's error.
std::size_t copy_outcome(PGconn* conn, const char* call) {
    std::size_t rows = 0;
    std::string error_text;
    std::string error_state;
    while (PGresult* raw = PQgetResult(conn)) {
        const result current(raw);
        if (PQresultStatus(raw) == PGRES_COMMAND_OK) {
            rows = current.affected_rows();
        } else if (error_text.empty()) {
            error_text = result_message(raw);
            const char* state_code = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
            error_state = state_code ? state_code : "";
        }
    }
    if (!error_text.empty()) {
        throw_server_error(call, error_text, error_state);
    }
    return rows;
}

}  // namespace

asio::awaitable<std::size_t> connection::copy_out(std::string copy_statement,
                                                  std::function<void(std::string_view)> sink,
                                                  std::chrono::milliseconds timeout) {
    if (!usable()) {
        throw connection_error("PQsendQuery", "connection is closed");
    }
    state& s = *state_;
    PGconn* conn = s.conn.get();
    const auto deadline = clock::now() + timeout;
    if (PQsendQuery(conn, copy_statement.c_str()) == 0) {
        s.fail("PQsendQuery");
    }
    try {
        if (!co_await s.wait_until_idle(deadline)) {
            s.close();
            throw timeout_error("PQsendQuery", "COPY did not start within its deadline");
        }
        {
            PGresult* raw = PQgetResult(conn);
            const result started(raw);
            if (raw == nullptr || PQresultStatus(raw) != PGRES_COPY_OUT) {
                const std::string message = raw ? result_message(raw) : s.error_message();
                const char* code = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
                while (PGresult* rest = PQgetResult(conn)) {
                    PQclear(rest);
                }
                throw_server_error("PQgetResult", message, code ? code : "");
            }
        }
        for (;;) {
            char* buffer = nullptr;
            const int got = PQgetCopyData(conn, &buffer, 1);
            if (got > 0) {
                const std::unique_ptr<char, free_memory> owned(buffer);
                sink(std::string_view(buffer, static_cast<std::size_t>(got)));
                continue;
            }
            if (got == -1) {
                break;  // the data is over; the statement's outcome follows
            }
            if (got == -2) {
                s.fail("PQgetCopyData");
            }
            if (co_await s.wait(true, false, deadline) == readiness::deadline) {
                s.close();
                throw timeout_error("PQgetCopyData", "COPY ran past its deadline");
            }
            if (PQconsumeInput(conn) == 0) {
                s.fail("PQconsumeInput");
            }
        }
        if (!co_await s.wait_until_idle(deadline)) {
            s.close();
            throw timeout_error("PQgetResult", "COPY did not end within its deadline");
        }
        co_return copy_outcome(conn, "PQgetResult");
    } catch (const pg_error&) {
        throw;
    } catch (...) {
        s.close();
        throw;
    }
}

asio::awaitable<std::size_t> connection::copy_in(std::string copy_statement,
                                                 std::function<std::string_view()> source,
                                                 std::chrono::milliseconds timeout) {
    if (!usable()) {
        throw connection_error("PQsendQuery", "connection is closed");
    }
    state& s = *state_;
    PGconn* conn = s.conn.get();
    const auto deadline = clock::now() + timeout;
    if (PQsendQuery(conn, copy_statement.c_str()) == 0) {
        s.fail("PQsendQuery");
    }
    try {
        if (!co_await s.wait_until_idle(deadline)) {
            s.close();
            throw timeout_error("PQsendQuery", "COPY did not start within its deadline");
        }
        {
            PGresult* raw = PQgetResult(conn);
            const result started(raw);
            if (raw == nullptr || PQresultStatus(raw) != PGRES_COPY_IN) {
                const std::string message = raw ? result_message(raw) : s.error_message();
                const char* code = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
                while (PGresult* rest = PQgetResult(conn)) {
                    PQclear(rest);
                }
                throw_server_error("PQgetResult", message, code ? code : "");
            }
        }
        // Sends one piece of the stream, waiting while libpq's buffer is full.
        const auto send = [&](auto&& put) -> asio::awaitable<void> {
            for (;;) {
                const int put_result = put();
                if (put_result == 1) {
                    co_return;
                }
                if (put_result == -1) {
                    s.fail("PQputCopyData");
                }
                if (co_await s.wait(true, true, deadline) == readiness::deadline) {
                    s.close();
                    throw timeout_error("PQputCopyData", "COPY ran past its deadline");
                }
                if (PQconsumeInput(conn) == 0) {
                    s.fail("PQconsumeInput");
                }
            }
        };
        // Named, not temporaries in the co_await expressions: GCC 12 mishandles those.
        std::string_view chunk;
        const auto put_chunk = [&] {
            return PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size()));
        };
        const auto put_end = [&] { return PQputCopyEnd(conn, nullptr); };
        for (chunk = source(); !chunk.empty(); chunk = source()) {
            co_await send(put_chunk);
        }
        co_await send(put_end);
        if (!co_await s.wait_until_idle(deadline)) {
            s.close();
            throw timeout_error("PQgetResult", "COPY did not end within its deadline");
        }
        co_return copy_outcome(conn, "PQgetResult");
    } catch (const pg_error&) {
        throw;
    } catch (...) {
        s.close();
        throw;
    }
}

bool connection::usable() const noexcept {
    return state_ && state_->conn && PQstatus(state_->conn.get()) == CONNECTION_OK;
}

int connection::backend_pid() const noexcept {
    return state_ ? state_->pid : 0;
}

void connection::close() noexcept {
    if (state_) {
        state_->close();
    }
}

std::string connection::quote_identifier(std::string_view name) const {
    if (!usable()) {
        throw connection_error("PQescapeIdentifier", "connection is closed");
    }
    std::unique_ptr<char, free_memory> quoted(
        PQescapeIdentifier(state_->conn.get(), name.data(), name.size()));
    if (!quoted) {
        throw pg_error("PQescapeIdentifier", state_->error_message());
    }
    return quoted.get();
}

std::string connection::quote_literal(std::string_view text) const {
    if (!usable()) {
        throw connection_error("PQescapeLiteral", "connection is closed");
    }
    std::unique_ptr<char, free_memory> quoted(
        PQescapeLiteral(state_->conn.get(), text.data(), text.size()));
    if (!quoted) {
        throw pg_error("PQescapeLiteral", state_->error_message());
    }
    return quoted.get();
}

}  // namespace pglease::pg
