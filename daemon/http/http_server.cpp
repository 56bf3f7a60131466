#include "http/http_server.hpp"

#include <cerrno>
#include <list>
#include <optional>
#include <stdexcept>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "http/beast_request.hpp"
#include "logging.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

std::pair<std::string, std::string> split_address(const std::string& address) {
    if (address.starts_with('[')) {
        const auto close = address.find(']');
        if (close == std::string::npos || close + 1 >= address.size() ||
            address[close + 1] != ':') {
            throw std::invalid_argument("bad listen address " + address);
        }
        return {address.substr(1, close - 1), address.substr(close + 2)};
    }
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) {
        throw std::invalid_argument("bad listen address " + address + " (expected host:port)");
    }
    return {address.substr(0, colon), address.substr(colon + 1)};
}

asio::ip::address resolve_host(const std::string& host) {
    if (host == "localhost") {
        return asio::ip::address_v4::loopback();
    }
    return asio::ip::make_address(host);
}

std::string error_body(const std::string& code, const std::string& message) {
    return nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

struct http_server_state {
    http_server_state(asio::any_io_executor e, http_limits l, request_handler h)
        : executor(std::move(e)), limits(l), handler(std::move(h)) {}

    struct session {
        beast::tcp_stream* stream = nullptr;
        bool busy = false;
    };

    asio::any_io_executor executor;
    http_limits limits;
    request_handler handler;
    std::function<void(int)> refused;
    std::optional<tcp::acceptor> acceptor;
    std::list<session> sessions;
    bool stopping = false;
};

namespace {

// True when the client has closed its end: a read would find the end of the stream (bytes it
// sent after its request, a pipelined one, leave it readable but not closed).
bool peer_closed(beast::tcp_stream& stream) {
    char byte = 0;
    const auto got = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// Writes the answer; false when it could not reach the client (`undelivered` has run then).
asio::awaitable<bool> write_response(beast::tcp_stream& stream, const http_limits& limits,
                                     const http_response& response, bool keep_alive,
                                     unsigned version) {
    if (response.undelivered && peer_closed(stream)) {
        response.undelivered();
        co_return false;
    }
    http::response<http::string_body> out{static_cast<http::status>(response.status), version};
    out.set(http::field::server, "pgleased");
    if (!response.body.empty()) {
        out.set(http::field::content_type, response.content_type);
    }
    for (const auto& [name, value] : response.headers) {
        out.set(name, value);
    }
    out.keep_alive(keep_alive);
    out.body() = response.body;
    out.prepare_payload();
    stream.expires_after(limits.read_timeout);
    boost::system::error_code failed;
    co_await http::async_write(stream, out, asio::redirect_error(asio::use_awaitable, failed));
    if (failed && response.undelivered) {
        response.undelivered();
    }
    co_return !failed;
}

http_response plain_error(int status, const std::string& code, const std::string& message) {
    http_response response;
    response.status = status;
    response.body = error_body(code, message);
    return response;
}

asio::awaitable<void> run_session(std::shared_ptr<http_server_state> s, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    const auto me = s->sessions.insert(s->sessions.end(), http_server_state::session{&stream});
    struct forget_session {
        std::shared_ptr<http_server_state> s;
        std::list<http_server_state::session>::iterator me;
        ~forget_session() { s->sessions.erase(me); }
    } guard{s, me};

    beast::flat_buffer buffer;
    bool first = true;
    while (!s->stopping) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(s->limits.max_header_bytes));
        parser.body_limit(s->limits.max_body_bytes);
        me->busy = false;
        // A new connection must send its request promptly; a kept-alive one may idle longer.
        // The deadline is a timer of our own rather than the stream's, which would close the
        // socket before a 408 could be written.
        stream.expires_never();
        auto read = [&]() -> asio::awaitable<boost::system::error_code> {
            boost::system::error_code read_error;
            co_await http::async_read(stream, buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, read_error));
            co_return read_error;
        };
        asio::steady_timer deadline(s->executor,
                                    first ? s->limits.read_timeout : s->limits.idle_timeout);
        // The timer that loses is cancelled: its error is a value, not an exception unwound on
        // every request.
        boost::system::error_code deadline_cancelled;
        auto outcome = co_await (read() || deadline.async_wait(asio::redirect_error(
                                               asio::use_awaitable, deadline_cancelled)));
        boost::system::error_code ec =
            outcome.index() == 1 ? beast::error::timeout : std::get<0>(outcome);
        me->busy = true;
        if (ec == http::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
            break;
        }
        if (ec == beast::error::timeout && !first && !parser.got_some()) {
            break;  // an idle keep-alive connection
        }
        if (ec) {
            const http_response refusal =
                ec == beast::error::timeout
                    ? plain_error(408, "request_timeout",
                                  "the request did not arrive within " +
                                      std::to_string(s->limits.read_timeout.count()) + " s")
                : ec == http::error::header_limit
                    ? plain_error(431, "headers_too_large",
                                  "request headers exceed " +
                                      std::to_string(s->limits.max_header_bytes) + " bytes")
                : ec == http::error::body_limit
                    ? plain_error(413, "body_too_large",
                                  "request body exceeds " +
                                      std::to_string(s->limits.max_body_bytes) + " bytes")
                    : plain_error(400, "bad_request", "malformed HTTP request: " + ec.message());
            if (s->refused) {
                s->refused(refusal.status);
            }
            co_await write_response(stream, s->limits, refusal, false, 11);
            break;
        }
        first = false;
        auto& raw = parser.get();
        http_request request = to_http_request(raw);
        const bool keep_alive = raw.keep_alive();
        const unsigned version = raw.version();
        http_response response;
        try {
            response = co_await s->handler(std::move(request));
        } catch (const std::exception& e) {
            spdlog::error("http {} {}: {}", std::string(raw.method_string()),
                          std::string(raw.target()), e.what());
            response =
                plain_error(500, "internal_error", "internal error: " + std::string(e.what()));
        }
        const bool again = keep_alive && !s->stopping;
        const bool delivered = co_await write_response(stream, s->limits, response, again, version);
        if (!again || !delivered) {
            break;
        }
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_connections(std::shared_ptr<http_server_state> s) {
    while (!s->stopping) {
        boost::system::error_code ec;
        tcp::socket socket =
            co_await s->acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (s->stopping || ec == asio::error::operation_aborted) {
                co_return;
            }
            // Out of descriptors, say: note it now and then, and let the pressure pass.
            warn_limited("http_accept_failed", "http accept failed: {}", ec.message());
            asio::steady_timer pause(s->executor, 10ms);
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        asio::co_spawn(
            s->executor, run_session(s, std::move(socket)), [](const std::exception_ptr& failure) {
                if (failure) {
                    try {
                        std::rethrow_exception(failure);
                    } catch (const std::exception& e) {
                        warn_limited("http_session_failed", "http session ended: {}", e.what());
                    }
                }
            });
    }
}

}  // namespace

http_server::http_server(asio::any_io_executor executor, http_limits limits,
                         request_handler handler)
    : state_(std::make_shared<http_server_state>(std::move(executor), limits, std::move(handler))) {
}

http_server::~http_server() {
    if (state_->acceptor && state_->acceptor->is_open()) {
        boost::system::error_code ignored;
        state_->acceptor->close(ignored);
    }
}

std::string http_server::listen(const std::string& address) {
    const auto [host, port_text] = split_address(address);
    const tcp::endpoint wanted(resolve_host(host),
                               static_cast<std::uint16_t>(std::stoi(port_text)));
    auto& acceptor = state_->acceptor.emplace(state_->executor);
    boost::system::error_code ec;
    acceptor.open(wanted.protocol(), ec);
    if (!ec) {
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acceptor.bind(wanted, ec);
    }
    if (!ec) {
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        throw std::runtime_error("cannot listen on " + address + ": " + ec.message() +
                                 (ec == asio::error::address_in_use
                                      ? " (another pgleased? choose another --listen)"
                                      : ""));
    }
    const auto bound = acceptor.local_endpoint();
    std::string text = bound.address().is_v6()
                           ? "[" + bound.address().to_string() + "]:" + std::to_string(bound.port())
                           : bound.address().to_string() + ":" + std::to_string(bound.port());
    asio::co_spawn(state_->executor, accept_connections(state_),
                   [](const std::exception_ptr& failure) {
                       if (failure) {
                           try {
                               std::rethrow_exception(failure);
                           } catch (const std::exception& e) {
                               spdlog::error("http accept loop stopped: {}", e.what());
                           }
                       }
                   });
    return text;
}

asio::awaitable<void> http_server::stop() {
    auto s = state_;
    s->stopping = true;
    boost::system::error_code ignored;
    if (s->acceptor) {
        s->acceptor->close(ignored);
    }
    // Idle connections go now; requests under way get the grace period.
    for (auto& session : s->sessions) {
        if (!session.busy) {
            session.stream->socket().close(ignored);
        }
    }
    asio::steady_timer pause(s->executor);
    for (auto until = std::chrono::steady_clock::now() + s->limits.shutdown_grace;
         !s->sessions.empty() && std::chrono::steady_clock::now() < until;) {
        pause.expires_after(10ms);
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    for (auto& session : s->sessions) {
        session.stream->socket().close(ignored);
    }
    for (int i = 0; i < 100 && !s->sessions.empty(); ++i) {
        pause.expires_after(10ms);
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
}

void http_server::on_refused(std::function<void(int status)> observer) {
    state_->refused = std::move(observer);
}

bool is_loopback_listen_address(const std::string& address) {
    try {
        return resolve_host(split_address(address).first).is_loopback();
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace pglease
