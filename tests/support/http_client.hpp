#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace pglease::test {

/// One HTTP response as a test sees it.
struct http_response {
    int status = 0;
    /// Header names lower-cased; a repeated header keeps its last value.
    std::map<std::string, std::string> headers;
    std::string body;

    /// The body parsed as JSON; throws std::runtime_error quoting the body when it is not JSON.
    nlohmann::json json() const;
    /// The value of header `name` (lower-case), "" when the response has none.
    std::string header(const std::string& name) const;
};

/// A blocking HTTP/1.1 client for tests: one keep-alive connection, re-opened when the server
/// closed it; every request fails after `request_timeout` instead of hanging.
class http_client {
  public:
    static constexpr std::chrono::seconds request_timeout{30};

    /// A client of the server at `host`:`port`; connects on the first request.
    http_client(std::string host, std::uint16_t port);
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;
    http_client(http_client&& other) noexcept;
    http_client& operator=(http_client&& other) noexcept;
    ~http_client();

    /// Sends "Authorization: Bearer <token>" with every later request (none when empty).
    void set_token(std::string token);

    /// Sends one request and reads its response; `headers` win over the ones the client adds
    /// (Host, Authorization, Content-Type, Content-Length).
    http_response request(const std::string& method, const std::string& target,
                          const std::string& body = {},
                          const std::map<std::string, std::string>& headers = {});
    /// GET `target`.
    http_response get(const std::string& target);
    /// POST `body` as JSON to `target`.
    http_response post(const std::string& target, const nlohmann::json& body);
    /// PUT `body` as JSON to `target`.
    http_response put(const std::string& target, const nlohmann::json& body);
    /// DELETE `target`.
    http_response del(const std::string& target);

    /// Sends raw bytes on a fresh connection and returns everything read until the server
    /// closes or `timeout` passes.
    std::string send_raw(const std::string& bytes, std::chrono::milliseconds timeout);

    /// The status code of a raw HTTP response text (0 when none).
    static int status_of(const std::string& raw_response);
    /// A raw HTTP response text parsed, or std::nullopt when it holds no complete status line
    /// and headers; the body is what follows the headers, cut at Content-Length.
    static std::optional<http_response> parse(const std::string& raw_response);

  private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace pglease::test
