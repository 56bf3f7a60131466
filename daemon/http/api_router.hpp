#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "http/http_message.hpp"

namespace pglease {

class lease_engine;
class http_metrics;

/// The HTTP API v1 (proto/openapi.yaml): one route table from which dispatch, the Allow header
/// of a 405 and the metrics' route label all come; the bearer token; request checks; and the
/// one place where errors become status codes.
class api_router {
  public:
    /// `token` empty: /v1 needs no token. Every answer is counted in `metrics`; GET /metrics
    /// answers with `metrics_text()`.
    api_router(lease_engine& engine, const std::string& token, http_metrics& metrics,
               std::function<std::string()> metrics_text);

    /// Answers one request; never throws.
    boost::asio::awaitable<http_response> handle(http_request request);

  private:
    /// One matched request: the values of the route's {…} segments, in order, and its query.
    struct call {
        const http_request& request;
        std::vector<std::string> params;
        std::map<std::string, std::string> query;
    };
    using handler = boost::asio::awaitable<http_response> (api_router::*)(const call&);
    /// A method and a path pattern ("/v1/leases/{id}"), and what answers them.
    struct route {
        std::string_view method;
        std::string_view pattern;
        handler answer;
    };
    static const std::vector<route>& routes();

    boost::asio::awaitable<http_response> answer(const http_request& request, std::string& label);
    /// Sets `label` to the matched route pattern before it can throw.
    boost::asio::awaitable<http_response> dispatch(const http_request& request, std::string& label);
    bool authorized(const http_request& request) const;

    boost::asio::awaitable<http_response> health(const call& c);
    boost::asio::awaitable<http_response> readiness(const call& c);
    boost::asio::awaitable<http_response> metrics(const call& c);
    boost::asio::awaitable<http_response> list_templates(const call& c);
    boost::asio::awaitable<http_response> get_template(const call& c);
    boost::asio::awaitable<http_response> ensure_template(const call& c);
    boost::asio::awaitable<http_response> finalize_build(const call& c);
    boost::asio::awaitable<http_response> abort_build(const call& c);
    boost::asio::awaitable<http_response> acquire(const call& c);
    boost::asio::awaitable<http_response> list_leases(const call& c);
    boost::asio::awaitable<http_response> get_lease(const call& c);
    boost::asio::awaitable<http_response> release(const call& c);
    boost::asio::awaitable<http_response> renew(const call& c);
    boost::asio::awaitable<http_response> reset(const call& c);

    lease_engine& engine_;
    std::string token_digest_;
    http_metrics& metrics_;
    std::function<std::string()> metrics_text_;
};

}  // namespace pglease
