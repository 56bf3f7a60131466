#include "http/api_router.hpp"

#include <cctype>
#include <ctime>
#include <openssl/crypto.h>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker.hpp"
#include "broker/broker_error.hpp"
#include "config/settings.hpp"
#include "hashing/sha256.hpp"
#include "http/api_error.hpp"
#include "http/request_fields.hpp"
#include "metrics/exposition.hpp"
#include "metrics/http_metrics.hpp"

namespace pglease {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;

constexpr std::size_t max_owner = 200;
constexpr std::size_t max_labels = 32;
constexpr std::size_t max_label_key = 64;
constexpr std::size_t max_label_value = 256;

std::string timestamp(std::chrono::system_clock::time_point t) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t whole = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&whole, &utc);
    char text[64];
    std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(ms % 1000));
    return text;
}

json lease_json(const lease_info& lease, bool with_secrets) {
    json out{{"template", lease.template_name},
             {"fingerprint", lease.fingerprint},
             {"database", lease.database},
             {"host", lease.host},
             {"port", lease.port},
             {"user", lease.user},
             {"owner", lease.owner},
             {"labels", lease.labels},
             {"acquired_at", timestamp(lease.acquired_at)},
             {"expires_at", timestamp(lease.expires_at)},
             {"backend", lease.backend}};
    if (with_secrets) {
        out["id"] = lease.id;
        out["dsn"] = lease.dsn();
        out["password"] = lease.password;
    }
    return out;
}

json template_json(const template_status& status) {
    return {{"name", status.name},
            {"fingerprint", status.fingerprint},
            {"state", status.state},
            {"error", status.error},
            {"source", status.source},
            {"pool",
             {{"idle", status.pool.idle},
              {"leased", status.pool.leased},
              {"creating", status.pool.creating},
              {"dropping", status.pool.dropping},
              {"kept", status.pool.kept},
              {"waiters", status.pool.waiters},
              {"min_idle", status.pool.min_idle},
              {"max_total", status.pool.max_total}}}};
}

json build_json(const build_info& build) {
    return {{"id", build.id},
            {"template", build.template_name},
            {"fingerprint", build.fingerprint},
            {"database", build.database},
            {"dsn", build.dsn()},
            {"host", build.host},
            {"port", build.port},
            {"user", build.user},
            {"password", build.password},
            {"expires_at", timestamp(build.expires_at)}};
}

http_response json_response(int status, const json& body) {
    http_response response;
    response.status = status;
    response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
    return response;
}

http_response no_content() {
    http_response response;
    response.status = 204;
    return response;
}

http_response error_response(int status, const std::string& code, const std::string& message,
                             const std::optional<seconds>& retry_after = std::nullopt) {
    http_response response =
        json_response(status, {{"error", {{"code", code}, {"message", message}}}});
    if (retry_after) {
        response.headers.emplace_back("Retry-After",
                                      std::to_string(std::max<long>(1, retry_after->count())));
    }
    return response;
}

int status_of(const std::string& code) {
    if (code == "unknown_template" || code == "unknown_lease" || code == "unknown_build") {
        return 404;
    }
    if (code == "conflict") {
        return 409;
    }
    if (code == "invalid_argument") {
        return 400;
    }
    return 503;  // pool_exhausted, backend_down, template_failed, template_building, not_ready
}

// Path segments of a target without its query; "" segments are kept so "//" does not match.
std::vector<std::string> segments_of(const std::string& path) {
    std::vector<std::string> segments;
    std::size_t start = 1;
    while (start <= path.size()) {
        auto end = path.find('/', start);
        if (end == std::string::npos) {
            end = path.size();
        }
        segments.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    if (!segments.empty() && segments.back().empty()) {
        segments.pop_back();  // a trailing slash
    }
    return segments;
}

// The route a path belongs to, as a metric label: a pattern, never the raw path.
std::string route_pattern(const std::vector<std::string>& s) {
    if (s.size() == 1 && (s[0] == "healthz" || s[0] == "readyz" || s[0] == "metrics")) {
        return "/" + s[0];
    }
    if (s.size() < 2 || s[0] != "v1") {
        return "unmatched";
    }
    if (s[1] == "templates") {
        if (s.size() == 2) {
            return "/v1/templates";
        }
        if (s.size() == 3) {
            return "/v1/templates/{name}";
        }
        if (s.size() == 4 && s[3] == "leases") {
            return "/v1/templates/{name}/leases";
        }
        if (s.size() == 6 && s[3] == "builds" && (s[5] == "finalize" || s[5] == "abort")) {
            return "/v1/templates/{name}/builds/{fingerprint}/" + s[5];
        }
    } else if (s[1] == "leases") {
        if (s.size() == 2) {
            return "/v1/leases";
        }
        if (s.size() == 3) {
            return "/v1/leases/{id}";
        }
        if (s.size() == 4 && s[3] == "renew") {
            return "/v1/leases/{id}/renew";
        }
    }
    return "unmatched";
}

bool is_client_fingerprint(const std::string& text) {
    if (text.empty() || text.size() > 128) {
        return false;
    }
    for (const char c : text) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

void check_template_name(const std::string& name) {
    if (template_name_problem(name)) {
        throw api_error(400, "invalid_argument",
                        "template name \"" + name + "\" must match [a-z][a-z0-9_]{0,26}");
    }
}

template_status template_or_404(broker& engine, const std::string& name) {
    auto status = engine.status(name);
    if (!status) {
        throw api_error(404, "unknown_template", "no template named \"" + name + "\"");
    }
    return *status;
}

lease_info lease_or_404(broker& engine, const std::string& id) {
    auto lease = engine.find_lease(id);
    if (!lease) {
        throw api_error(404, "unknown_lease", "no such lease (it expired or was released)");
    }
    return *lease;
}

void no_query(const std::map<std::string, std::string>& query) {
    if (!query.empty()) {
        throw api_error(400, "invalid_argument",
                        "unknown query parameter \"" + query.begin()->first + "\"");
    }
}

}  // namespace

api_router::api_router(broker& engine, const std::string& token, http_metrics& metrics,
                       std::function<std::string()> metrics_text)
    : engine_(engine),
      token_digest_(token.empty() ? std::string() : sha256_hex(token)),
      metrics_(metrics),
      metrics_text_(std::move(metrics_text)) {}

bool api_router::authorized(const http_request& request) const {
    if (token_digest_.empty()) {
        return true;
    }
    const std::string header = request.header("authorization");
    constexpr std::string_view scheme = "Bearer ";
    if (header.size() <= scheme.size() || header.compare(0, scheme.size(), scheme) != 0) {
        return false;
    }
    // Digests have one length, so the comparison takes the same time whatever was sent.
    const std::string offered = sha256_hex(header.substr(scheme.size()));
    return CRYPTO_memcmp(offered.data(), token_digest_.data(), offered.size()) == 0;
}

boost::asio::awaitable<http_response> api_router::handle(http_request request) {
    const auto started = std::chrono::steady_clock::now();
    std::string route = "unmatched";
    http_response response = co_await answer(request, route);
    metrics_.record(
        route, response.status,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    co_return response;
}

boost::asio::awaitable<http_response> api_router::answer(const http_request& request,
                                                         std::string& route_label) {
    try {
        co_return co_await route(request, route_label);
    } catch (const api_error& e) {
        http_response response = error_response(e.status(), e.code(), e.what(), e.retry_after());
        if (!e.allow().empty()) {
            response.headers.emplace_back("Allow", e.allow());
        }
        co_return response;
    } catch (const broker_error& e) {
        co_return error_response(status_of(e.code()), e.code(), e.what(), e.retry_after());
    } catch (const std::exception& e) {
        spdlog::error("{} {}: {}", request.method, request.target, e.what());
        co_return error_response(500, "internal_error", std::string("internal error: ") + e.what());
    }
}

boost::asio::awaitable<http_response> api_router::route(const http_request& request,
                                                        std::string& label) {
    const auto question = request.target.find('?');
    const std::string path = request.target.substr(0, question);
    const auto query =
        parse_query(question == std::string::npos ? "" : request.target.substr(question + 1));
    const auto s = segments_of(path);
    label = route_pattern(s);
    const std::string& method = request.method;
    const auto allow = [&](std::initializer_list<const char*> methods) {
        for (const char* m : methods) {
            if (method == m) {
                return;
            }
        }
        std::string list;
        for (const char* m : methods) {
            list += (list.empty() ? "" : ", ") + std::string(m);
        }
        throw api_error(405, "method_not_allowed", method + " is not allowed here; use " + list)
            .with_allow(list);
    };

    if (s.size() == 1 && s[0] == "healthz") {
        allow({"GET"});
        co_return json_response(200, {{"status", "ok"}});
    }
    if (s.size() == 1 && s[0] == "readyz") {
        allow({"GET"});
        if (!engine_.ready()) {
            co_return error_response(503, "not_ready",
                                     "backends are not all reachable or templates not all built",
                                     seconds(1));
        }
        co_return json_response(200, {{"status", "ready"}});
    }
    if (s.size() == 1 && s[0] == "metrics") {
        allow({"GET"});
        http_response response;
        response.content_type = metrics_content_type;
        response.body = metrics_text_();
        co_return response;
    }
    if (s.empty() || s[0] != "v1") {
        throw api_error(404, "not_found", "no such path: " + path);
    }
    if (!authorized(request)) {
        http_response response =
            error_response(401, "unauthorized",
                           "this API needs \"Authorization: Bearer <token>\" with the right token");
        response.headers.emplace_back("WWW-Authenticate", "Bearer");
        co_return response;
    }

    // Until every backend's catalog is read, memory holds none of the live leases and none of
    // the client-initialized templates: an answer now would be a wrong 404.
    if (auto why = engine_.not_serving()) {
        throw api_error(503, "not_ready", "pgleased is starting: " + *why, seconds(1));
    }

    if (s.size() == 2 && s[1] == "templates") {
        allow({"GET"});
        no_query(query);
        json list = json::array();
        for (const auto& status : engine_.templates()) {
            list.push_back(template_json(status));
        }
        co_return json_response(200, {{"templates", list}});
    }
    if (s.size() == 3 && s[1] == "templates") {
        allow({"GET", "PUT"});
        no_query(query);
        if (method == "GET") {
            co_return json_response(200, template_json(template_or_404(engine_, s[2])));
        }
        check_template_name(s[2]);
        request_fields fields(request.body);
        const auto fingerprint = fields.text("fingerprint", 128);
        const auto wait = fields.integer("wait_seconds", 0, 600);
        const auto build_ttl = fields.integer("build_ttl_seconds", 1, 3600);
        fields.reject_unknown();
        if (!fingerprint || !is_client_fingerprint(*fingerprint)) {
            throw api_error(400, "invalid_argument",
                            "fingerprint is required: 1 to 128 characters of A-Z a-z 0-9 . _ -");
        }
        auto outcome = co_await engine_.ensure_client_template(
            s[2], *fingerprint, seconds(wait.value_or(30)), seconds(build_ttl.value_or(600)));
        if (outcome.ready) {
            co_return json_response(
                200, {{"state", "ready"}, {"template", template_json(outcome.status)}});
        }
        co_return json_response(201, {{"state", "build"},
                                      {"template", template_json(outcome.status)},
                                      {"build", build_json(*outcome.build)}});
    }
    if (s.size() == 4 && s[1] == "templates" && s[3] == "leases") {
        allow({"POST"});
        no_query(query);
        const template_status status = template_or_404(engine_, s[2]);
        request_fields fields(request.body);
        acquire_request acquire;
        if (auto ttl = fields.integer("ttl_seconds", 1, status.max_ttl.count())) {
            acquire.ttl = seconds(*ttl);
        }
        if (auto wait = fields.integer("wait_seconds", 0, status.max_wait.count())) {
            acquire.wait = seconds(*wait);
        }
        acquire.owner = fields.text("owner", max_owner).value_or("");
        acquire.labels = fields.labels("labels", max_labels, max_label_key, max_label_value)
                             .value_or(std::map<std::string, std::string>{});
        fields.reject_unknown();
        auto lease = co_await engine_.acquire(s[2], std::move(acquire));
        co_return json_response(201, lease_json(lease, true));
    }
    if (s.size() == 6 && s[1] == "templates" && s[3] == "builds" &&
        (s[5] == "finalize" || s[5] == "abort")) {
        allow({"POST"});
        no_query(query);
        request_fields fields(request.body);
        const auto build_id = fields.text("build_id", 64);
        fields.reject_unknown();
        if (!build_id) {
            throw api_error(400, "invalid_argument", "build_id is required");
        }
        if (s[5] == "finalize") {
            auto status = co_await engine_.finalize_build(s[2], s[4], *build_id);
            co_return json_response(200, template_json(status));
        }
        co_await engine_.abort_build(s[2], s[4], *build_id);
        co_return no_content();
    }
    if (s.size() == 2 && s[1] == "leases") {
        allow({"GET"});
        no_query(query);
        json list = json::array();
        for (const auto& lease : engine_.leases()) {
            list.push_back(lease_json(lease, false));
        }
        co_return json_response(200, {{"leases", list}});
    }
    if (s.size() == 3 && s[1] == "leases") {
        allow({"GET", "DELETE"});
        if (method == "GET") {
            no_query(query);
            co_return json_response(200, lease_json(lease_or_404(engine_, s[2]), true));
        }
        const lease_info lease = lease_or_404(engine_, s[2]);
        release_mode mode = release_mode::recycle;
        std::optional<seconds> keep_for;
        for (const auto& [name, value] : query) {
            if (name == "mode") {
                if (value == "recycle") {
                    mode = release_mode::recycle;
                } else if (value == "reuse") {
                    mode = release_mode::reuse;
                } else if (value == "keep") {
                    mode = release_mode::keep;
                } else {
                    throw api_error(400, "invalid_argument",
                                    "mode must be recycle, reuse or keep, not \"" + value + "\"");
                }
            } else if (name != "keep_seconds") {
                throw api_error(400, "invalid_argument",
                                "unknown query parameter \"" + name + "\"");
            }
        }
        if (auto keep = query.find("keep_seconds"); keep != query.end()) {
            if (mode != release_mode::keep) {
                throw api_error(400, "invalid_argument", "keep_seconds goes only with mode=keep");
            }
            const auto limits = template_or_404(engine_, lease.template_name);
            keep_for =
                seconds(query_integer("keep_seconds", keep->second, 1, limits.max_keep.count()));
        }
        co_await engine_.release(s[2], mode, keep_for);
        co_return no_content();
    }
    if (s.size() == 4 && s[1] == "leases" && s[3] == "renew") {
        allow({"POST"});
        no_query(query);
        const lease_info lease = lease_or_404(engine_, s[2]);
        const auto limits = template_or_404(engine_, lease.template_name);
        request_fields fields(request.body);
        const auto ttl = fields.integer("ttl_seconds", 1, limits.max_ttl.count());
        fields.reject_unknown();
        auto renewed = co_await engine_.renew(
            s[2], ttl ? std::optional<seconds>(seconds(*ttl)) : std::nullopt);
        co_return json_response(200, lease_json(renewed, true));
    }
    throw api_error(404, "not_found", "no such path: " + path);
}

}  // namespace pglease
