#include "pg/connection.hpp"

#include "pg/connection_state.hpp"

namespace pglease::pg {

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
