#pragma once

#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "http/http_message.hpp"

namespace pglease {

class broker;
class http_metrics;

/// The HTTP API v1 (proto/openapi.yaml): routes, the bearer token, request checks, and the one
/// place where errors become status codes.
class api_router {
  public:
    /// `token` empty: /v1 needs no token. Every answer is counted in `metrics`; GET /metrics
    /// answers with `metrics_text()`.
    api_router(broker& engine, const std::string& token, http_metrics& metrics,
               std::function<std::string()> metrics_text);

    /// Answers one request; never throws.
    boost::asio::awaitable<http_response> handle(http_request request);

  private:
    boost::asio::awaitable<http_response> answer(const http_request& request, std::string& route);
    /// Sets `label` to the matched route pattern before it can throw.
    boost::asio::awaitable<http_response> route(const http_request& request, std::string& label);
    bool authorized(const http_request& request) const;

    broker& engine_;
    std::string token_digest_;
    http_metrics& metrics_;
    std::function<std::string()> metrics_text_;
};

}  // namespace pglease
