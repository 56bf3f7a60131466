#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "http/http_message.hpp"

namespace pglease {

/// Bounds on every request, so no client can hold the server's memory or connections.
struct http_limits {
    std::size_t max_header_bytes = std::size_t{8} * 1024;
    std::size_t max_body_bytes = std::size_t{64} * 1024;
    /// A request's headers and body must arrive within this.
    std::chrono::seconds read_timeout{10};
    /// A keep-alive connection may wait this long for its next request.
    std::chrono::seconds idle_timeout{60};
    /// On stop, requests under way get this long to finish.
    std::chrono::seconds shutdown_grace{10};
};

struct http_server_state;

/// Answers one request; never throws (errors are responses).
using request_handler = std::function<boost::asio::awaitable<http_response>(http_request)>;

/// HTTP/1.1 server with keep-alive on the daemon's executor (Boost.Beast, C++20 coroutines).
class http_server {
  public:
    http_server(boost::asio::any_io_executor executor, http_limits limits, request_handler handler);
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;
    ~http_server();

    /// Binds and listens on "host:port" ("[::1]:7432" for IPv6; port 0 picks one) and starts
    /// accepting. Returns the bound address, e.g. "127.0.0.1:43123".
    std::string listen(const std::string& address);
    /// Calls `observer` with the status of every request refused before it reached the handler
    /// (408, 413, 431, malformed).
    void on_refused(std::function<void(int status)> observer);
    /// Stops accepting, lets requests under way finish within the grace period, then closes
    /// every connection.
    boost::asio::awaitable<void> stop();

  private:
    std::shared_ptr<http_server_state> state_;
};

/// True when `address` ("host:port") is a loopback address.
bool is_loopback_listen_address(const std::string& address);

}  // namespace pglease
