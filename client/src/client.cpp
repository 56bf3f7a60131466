// The HTTP side of the client: one keep-alive connection, synchronous Boost.Beast.
#include "pglease/client.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace pglease::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;
using tcp = asio::ip::tcp;

namespace {

std::string from_env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? std::string(value) : std::string();
}

struct endpoint {
    std::string host;
    std::string port;
};

endpoint parse_base_url(const std::string& url) {
    constexpr std::string_view scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0) {
        throw error(0, "invalid_url",
                    "the pgleased URL must start with http://, got \"" + url + "\"");
    }
    std::string rest = url.substr(scheme.size());
    rest = rest.substr(0, rest.find('/'));
    endpoint where;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string::npos) {
            throw error(0, "invalid_url", "unbalanced [ in \"" + url + "\"");
        }
        where.host = rest.substr(1, close - 1);
        rest = rest.substr(close + 1);
        where.port = !rest.empty() && rest.front() == ':' ? rest.substr(1) : "80";
    } else {
        const auto colon = rest.rfind(':');
        where.host = rest.substr(0, colon);
        where.port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
    }
    if (where.host.empty() || where.port.empty()) {
        throw error(0, "invalid_url", "no host:port in \"" + url + "\"");
    }
    return where;
}

// "2026-01-02T03:04:05.678Z", as the server writes expires_at.
std::chrono::system_clock::time_point parse_timestamp(const std::string& text) {
    std::tm utc{};
    std::istringstream in(text);
    in >> std::get_time(&utc, "%Y-%m-%dT%H:%M:%S");
    if (in.fail()) {
        return {};
    }
    int millis = 0;
    if (in.peek() == '.') {
        in.get();
        in >> millis;
    }
    return std::chrono::system_clock::from_time_t(timegm(&utc)) + std::chrono::milliseconds(millis);
}

lease_data lease_from(const json& body) {
    lease_data lease;
    lease.id = body.value("id", "");
    lease.template_name = body.value("template", "");
    lease.fingerprint = body.value("fingerprint", "");
    lease.database = body.value("database", "");
    lease.dsn = body.value("dsn", "");
    lease.host = body.value("host", "");
    lease.port = body.value<std::uint16_t>("port", 0);
    lease.user = body.value("user", "");
    lease.password = body.value("password", "");
    lease.backend = body.value("backend", "");
    lease.expires_at = parse_timestamp(body.value("expires_at", ""));
    return lease;
}

template_data template_from(const json& body) {
    template_data t;
    t.name = body.value("name", "");
    t.state = body.value("state", "");
    t.source = body.value("source", "");
    t.fingerprint = body.value("fingerprint", "");
    t.error = body.value("error", "");
    const json pool = body.value("pool", json::object());
    t.idle = pool.value("idle", 0);
    t.leased = pool.value("leased", 0);
    t.creating = pool.value("creating", 0);
    t.dropping = pool.value("dropping", 0);
    t.kept = pool.value("kept", 0);
    t.resetting = pool.value("resetting", 0);
    t.recycle = pool.value("recycle", "");
    t.waiters = pool.value("waiters", 0);
    t.min_idle = pool.value("min_idle", 0);
    t.max_total = pool.value("max_total", 0);
    return t;
}

std::string url_escape(const std::string& text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

const char* mode_name(release_mode mode) {
    switch (mode) {
        case release_mode::reuse:
            return "reuse";
        case release_mode::keep:
            return "keep";
        case release_mode::recycle:
            break;
    }
    return "recycle";
}

}  // namespace

struct client::connection {
    std::string base_url;
    std::string token;
    std::chrono::seconds timeout;
    endpoint where;
    asio::io_context io;
    std::optional<beast::tcp_stream> stream;
    beast::flat_buffer buffer;

    void open(std::chrono::steady_clock::duration limit) {
        stream.emplace(io);
        stream->expires_after(limit);
        boost::system::error_code ec;
        tcp::resolver resolver(io);
        const auto addresses = resolver.resolve(where.host, where.port, ec);
        if (!ec) {
            stream->connect(addresses, ec);
        }
        if (ec) {
            stream.reset();
            throw unreachable_error("cannot reach pgleased at " + base_url + ": " + ec.message());
        }
        buffer.clear();
    }

    // One call. A pgleased that is starting (its catalog not read yet, or a standby waiting for
    // the backend) answers 503 not_ready: the call is made again until the timeout has passed.
    std::pair<int, json> call(http::verb method, const std::string& target, const json* body,
                              std::chrono::seconds extra_wait = std::chrono::seconds(0)) {
        const auto give_up_at = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            std::chrono::seconds retry_after{1};
            try {
                return exchange(method, target, body, extra_wait, retry_after);
            } catch (const error& e) {
                const auto pause =
                    std::clamp(retry_after, std::chrono::seconds(1), std::chrono::seconds(5));
                if (e.status() != 503 || e.code() != "not_ready" ||
                    std::chrono::steady_clock::now() + pause >= give_up_at) {
                    throw;
                }
                std::this_thread::sleep_for(pause);
            }
        }
    }

    // One exchange; a kept-alive connection the server closed meanwhile is reopened once.
    std::pair<int, json> exchange(http::verb method, const std::string& target, const json* body,
                                  std::chrono::seconds extra_wait,
                                  std::chrono::seconds& retry_after) {
        const auto limit = timeout + extra_wait;
        for (int attempt = 0;; ++attempt) {
            const bool reused = stream.has_value();
            if (!reused) {
                open(limit);
            }
            http::request<http::string_body> request{method, target, 11};
            request.set(http::field::host, where.host + ":" + where.port);
            request.set(http::field::user_agent, "pglease-client");
            request.keep_alive(true);
            if (!token.empty()) {
                request.set(http::field::authorization, "Bearer " + token);
            }
            if (body != nullptr) {
                request.set(http::field::content_type, "application/json");
                request.body() = body->dump();
            }
            request.prepare_payload();
            http::response<http::string_body> response;
            boost::system::error_code ec;
            stream->expires_after(limit);
            http::write(*stream, request, ec);
            if (!ec) {
                http::read(*stream, buffer, response, ec);
            }
            if (ec) {
                stream.reset();
                if (reused && attempt == 0 && ec != beast::error::timeout) {
                    continue;  // the server closed an idle connection: once more, fresh
                }
                throw unreachable_error("no answer from pgleased at " + base_url + ": " +
                                        ec.message());
            }
            if (!response.keep_alive()) {
                stream.reset();
            }
            const int status = static_cast<int>(response.result_int());
            json parsed =
                response.body().empty() ? json() : json::parse(response.body(), nullptr, false);
            if (status >= 400) {
                if (auto after = response.find(http::field::retry_after); after != response.end()) {
                    retry_after = std::chrono::seconds(
                        std::strtol(std::string(after->value()).c_str(), nullptr, 10));
                }
                std::string code = "http_" + std::to_string(status);
                std::string message =
                    "pgleased answered " + std::to_string(status) + " to " + target;
                if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
                    code = parsed["error"].value("code", code);
                    message = parsed["error"].value("message", message);
                }
                throw error(status, code, message);
            }
            if (parsed.is_discarded()) {
                throw error(status, "bad_response", "pgleased sent a body that is not JSON");
            }
            return {status, std::move(parsed)};
        }
    }
};

client::client(std::string base_url, std::string token, std::chrono::seconds timeout)
    : connection_(std::make_unique<connection>()) {
    if (base_url.empty()) {
        base_url = from_env("PGLEASE_URL");
    }
    if (base_url.empty()) {
        base_url = "http://127.0.0.1:7432";
    }
    while (!base_url.empty() && base_url.back() == '/') {
        base_url.pop_back();
    }
    if (token.empty()) {
        token = from_env("PGLEASE_TOKEN");
    }
    connection_->where = parse_base_url(base_url);
    connection_->base_url = std::move(base_url);
    connection_->token = std::move(token);
    connection_->timeout = timeout;
}

client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() = default;

const std::string& client::base_url() const noexcept {
    return connection_->base_url;
}

const std::string& client::token() const noexcept {
    return connection_->token;
}

lease_data client::acquire(const std::string& template_name, const lease_options& options) {
    json body = json::object();
    if (options.ttl) {
        body["ttl_seconds"] = options.ttl->count();
    }
    if (options.wait) {
        body["wait_seconds"] = options.wait->count();
    }
    if (!options.owner.empty()) {
        body["owner"] = options.owner;
    }
    if (!options.labels.empty()) {
        body["labels"] = options.labels;
    }
    if (!options.fingerprint.empty()) {
        body["fingerprint"] = options.fingerprint;
    }
    // The server may wait up to the template's max wait; don't give up before it answers.
    const auto wait = options.wait.value_or(std::chrono::seconds(600));
    return lease_from(connection_
                          ->call(http::verb::post,
                                 "/v1/templates/" + url_escape(template_name) + "/leases", &body,
                                 wait)
                          .second);
}

lease_data client::renew(const std::string& id, std::optional<std::chrono::seconds> ttl) {
    json body = json::object();
    if (ttl) {
        body["ttl_seconds"] = ttl->count();
    }
    return lease_from(
        connection_->call(http::verb::post, "/v1/leases/" + url_escape(id) + "/renew", &body)
            .second);
}

reset_data client::reset(const std::string& id) {
    const json body = json::object();
    const json answer =
        connection_->call(http::verb::post, "/v1/leases/" + url_escape(id) + "/reset", &body)
            .second;
    reset_data reset;
    reset.lease = lease_from(answer);
    const json outcome = answer.value("reset", json::object());
    reset.result = outcome.value("result", "");
    reset.reason = outcome.value("reason", "");
    return reset;
}

void client::release(const std::string& id, release_mode mode,
                     std::optional<std::chrono::seconds> keep_for) {
    std::string target = "/v1/leases/" + url_escape(id) + "?mode=" + mode_name(mode);
    if (keep_for) {
        target += "&keep_seconds=" + std::to_string(keep_for->count());
    }
    connection_->call(http::verb::delete_, target, nullptr);
}

std::vector<template_data> client::templates() {
    const auto body = connection_->call(http::verb::get, "/v1/templates", nullptr).second;
    std::vector<template_data> all;
    for (const auto& t : body.value("templates", json::array())) {
        all.push_back(template_from(t));
    }
    return all;
}

template_data client::template_status(const std::string& name) {
    return template_from(
        connection_->call(http::verb::get, "/v1/templates/" + url_escape(name), nullptr).second);
}

std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
    if (text.empty()) {
        return std::nullopt;
    }
    long long total = 0;
    std::size_t i = 0;
    bool unit_seen = false;
    while (i < text.size()) {
        std::size_t digits = 0;
        long long value = 0;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
            value = value * 10 + (text[i] - '0');
            if (value > 100LL * 365 * 24 * 3600) {
                return std::nullopt;
            }
            ++i;
            ++digits;
        }
        if (digits == 0) {
            return std::nullopt;
        }
        if (i == text.size()) {
            if (unit_seen) {
                return std::nullopt;  // "1h30" is ambiguous
            }
            total += value;
            break;
        }
        const char unit = text[i++];
        unit_seen = true;
        switch (unit) {
            case 's':
                total += value;
                break;
            case 'm':
                total += value * 60;
                break;
            case 'h':
                total += value * 3600;
                break;
            case 'd':
                total += value * 86400;
                break;
            default:
                return std::nullopt;
        }
    }
    return std::chrono::seconds(total);
}

}  // namespace pglease::client
