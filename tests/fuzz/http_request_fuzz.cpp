// Raw bytes on the API's socket, as pgleased handles them: parsed by Beast with the server's
// limits, then routed, authorized and validated by the real router against a stand-in engine
// (one template "app" with one live lease; the engine's own refusals included). The router must
// answer every request that parses, never with a 500, and every answer with a body is JSON (an
// error being {"error": {"code", "message"}}).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "broker/broker_error.hpp"
#include "broker/lease_engine.hpp"
#include "http/api_router.hpp"
#include "http/beast_request.hpp"
#include "http/http_server.hpp"
#include "metrics/http_metrics.hpp"

namespace {

using namespace std::chrono_literals;
using pglease::broker_error;
namespace asio = boost::asio;

const std::string live_lease(32, 'a');

pglease::template_status app() {
    pglease::template_status status;
    status.name = "app";
    status.source = "migrations";
    status.fingerprint = std::string(64, 'f');
    status.state = pglease::template_state::ready;
    status.versions = {status.fingerprint};
    status.max_ttl = 3600s;
    status.max_wait = 600s;
    status.max_keep = 86400s;
    return status;
}

pglease::lease_info lease() {
    pglease::lease_info info;
    info.id = live_lease;
    info.key = std::string(64, 'b');
    info.template_name = "app";
    info.fingerprint = std::string(64, 'f');
    info.database = "pglease_app_ffffffff_1";
    info.host = "127.0.0.1";
    info.port = 5432;
    info.user = "pglease_worker";
    info.password = "secret";
    info.backend = "main";
    info.expires_at = std::chrono::system_clock::now() + 600s;
    return info;
}

void known_template(const std::string& name) {
    if (name != "app") {
        throw broker_error("unknown_template", "no template named \"" + name + "\"");
    }
}

void known_lease(const std::string& id) {
    if (id != live_lease) {
        throw broker_error("unknown_lease", "no such lease");
    }
}

// Answers as a broker with one template and one lease would.
class stand_in final : public pglease::lease_engine {
  public:
    asio::awaitable<pglease::lease_info> acquire(std::string name,
                                                 pglease::acquire_request request) override {
        known_template(name);
        if (!request.fingerprint.empty() && request.fingerprint != std::string(64, 'f')) {
            throw broker_error("unknown_version", "no such version");
        }
        co_return lease();
    }
    asio::awaitable<pglease::lease_info> renew(std::string id,
                                               std::optional<std::chrono::seconds>) override {
        known_lease(id);
        co_return lease();
    }
    asio::awaitable<void> release(std::string id, pglease::release_mode,
                                  std::optional<std::chrono::seconds>) override {
        known_lease(id);
        co_return;
    }
    asio::awaitable<pglease::reset_answer> reset(std::string id) override {
        known_lease(id);
        co_return pglease::reset_answer{lease(), "reset", ""};
    }
    asio::awaitable<pglease::client_template_outcome> ensure_client_template(
        std::string name, std::string, std::chrono::seconds, std::chrono::seconds) override {
        if (name == "app") {
            throw broker_error("conflict", "configured from its source");
        }
        pglease::client_template_outcome outcome;
        outcome.ready = true;
        outcome.status = app();
        outcome.status.name = name;
        co_return outcome;
    }
    asio::awaitable<pglease::template_status> finalize_build(std::string, std::string,
                                                             std::string) override {
        throw broker_error("unknown_build", "no such build");
    }
    asio::awaitable<void> abort_build(std::string, std::string, std::string) override {
        throw broker_error("unknown_build", "no such build");
    }
    std::optional<std::string> not_serving() const override { return std::nullopt; }
    std::optional<pglease::lease_info> find_lease(const std::string& id) const override {
        return id == live_lease ? std::optional(lease()) : std::nullopt;
    }
    std::vector<pglease::lease_info> leases() const override { return {lease()}; }
    std::optional<pglease::template_status> status(const std::string& name) const override {
        return name == "app" ? std::optional(app()) : std::nullopt;
    }
    std::vector<pglease::template_status> templates() const override { return {app()}; }
    readiness ready() const override { return {true, {}}; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace http = boost::beast::http;
    static stand_in engine;
    static pglease::http_metrics metrics;
    // A request with an Authorization header meets a router that wants a token (the right one
    // or not); one without, a router that wants none.
    static pglease::api_router with_token(engine, "fuzz-token", metrics, [] { return "# m\n"; });
    static pglease::api_router without_token(engine, "", metrics, [] { return "# m\n"; });

    http::request_parser<http::string_body> parser;
    const pglease::http_limits limits;  // the server's
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    parser.eager(true);
    boost::beast::error_code failed;
    parser.put(boost::asio::buffer(data, size), failed);
    if (failed || !parser.is_done()) {
        return 0;  // the server answers those itself (400, 413, 431) before any route
    }
    pglease::http_request request = pglease::to_http_request(parser.get());
    pglease::api_router& router =
        request.headers.contains("authorization") ? with_token : without_token;

    asio::io_context io;
    std::optional<pglease::http_response> answer;
    asio::co_spawn(io, router.handle(std::move(request)),
                   [&](const std::exception_ptr& thrown, pglease::http_response response) {
                       if (thrown) {
                           __builtin_trap();  // handle() never throws
                       }
                       answer = std::move(response);
                   });
    io.run();
    if (!answer || answer->status == 500 || answer->status < 200 || answer->status > 599) {
        __builtin_trap();
    }
    if (!answer->body.empty() && answer->content_type == "application/json") {
        const auto body = nlohmann::json::parse(answer->body, nullptr, false);
        if (body.is_discarded()) {
            __builtin_trap();
        }
        if (answer->status >= 400 && !(body.contains("error") && body["error"].contains("code") &&
                                       body["error"].contains("message"))) {
            __builtin_trap();
        }
    }
    return 0;
}
