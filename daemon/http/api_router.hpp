#pragma once

#include <string>

#include <boost/asio/awaitable.hpp>

#include "http/http_message.hpp"

namespace pglease {

class broker;

/// The HTTP API v1 (proto/openapi.yaml): routes, the bearer token, request checks, and the one
/// place where errors become status codes.
class api_router {
  public:
    /// `token` empty: /v1 needs no token.
    api_router(broker& engine, const std::string& token);

    /// Answers one request; never throws.
    boost::asio::awaitable<http_response> handle(http_request request);

  private:
    boost::asio::awaitable<http_response> route(const http_request& request);
    bool authorized(const http_request& request) const;

    broker& engine_;
    std::string token_digest_;
};

}  // namespace pglease
