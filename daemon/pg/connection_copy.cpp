// COPY in both directions: a table's rows streamed out to a sink, and back in from a source.
#include "pg/connection.hpp"
#include "pg/connection_state.hpp"

namespace pglease::pg {

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

}  // namespace pglease::pg
