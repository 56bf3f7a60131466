#include "http/api_router.hpp"

#include <cctype>
#include <openssl/crypto.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "broker/broker_error.hpp"
#include "broker/lease_engine.hpp"
#include "config/settings.hpp"
#include "hashing/sha256.hpp"
#include "http/api_error.hpp"
#include "http/api_json.hpp"
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

// Path segments of a target without its query; "" segments are kept so "//" does not match.
std::vector<std::string> segments_of(std::string_view path) {
    std::vector<std::string> segments;
    std::size_t start = 1;
    while (start <= path.size()) {
        auto end = path.find('/', start);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        segments.emplace_back(path.substr(start, end - start));
        start = end + 1;
    }
    if (!segments.empty() && segments.back().empty()) {
        segments.pop_back();  // a trailing slash
    }
    return segments;
}

// The values of the {…} segments of a route whose pattern has segments `wanted` in `path`, or
// std::nullopt when it does not match.
std::optional<std::vector<std::string>> match(const std::vector<std::string>& wanted,
                                              const std::vector<std::string>& path) {
    if (wanted.size() != path.size()) {
        return std::nullopt;
    }
    std::vector<std::string> params;
    for (std::size_t i = 0; i < wanted.size(); ++i) {
        if (wanted[i].starts_with('{')) {
            if (path[i].empty()) {
                return std::nullopt;
            }
            params.push_back(path[i]);
        } else if (wanted[i] != path[i]) {
            return std::nullopt;
        }
    }
    return params;
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

template_status template_or_404(lease_engine& engine, const std::string& name) {
    auto status = engine.status(name);
    if (!status) {
        throw api_error(404, "unknown_template", "no template named \"" + name + "\"");
    }
    return *status;
}

lease_info lease_or_404(lease_engine& engine, const std::string& id) {
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

const std::vector<api_router::route>& api_router::routes() {
    // Every endpoint, once: dispatch, 405's Allow and the metrics' route label come from here.
    static const std::vector<route> table{
        {"GET", "/healthz", &api_router::health},
        {"GET", "/readyz", &api_router::readiness},
        {"GET", "/metrics", &api_router::metrics},
        {"GET", "/v1/templates", &api_router::list_templates},
        {"GET", "/v1/templates/{name}", &api_router::get_template},
        {"PUT", "/v1/templates/{name}", &api_router::ensure_template},
        {"POST", "/v1/templates/{name}/leases", &api_router::acquire},
        {"POST", "/v1/templates/{name}/builds/{fingerprint}/finalize", &api_router::finalize_build},
        {"POST", "/v1/templates/{name}/builds/{fingerprint}/abort", &api_router::abort_build},
        {"GET", "/v1/leases", &api_router::list_leases},
        {"GET", "/v1/leases/{id}", &api_router::get_lease},
        {"DELETE", "/v1/leases/{id}", &api_router::release},
        {"POST", "/v1/leases/{id}/renew", &api_router::renew},
        {"POST", "/v1/leases/{id}/reset", &api_router::reset},
    };
    return table;
}

api_router::api_router(lease_engine& engine, const std::string& token, http_metrics& metrics,
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
        co_return co_await dispatch(request, route_label);
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

boost::asio::awaitable<http_response> api_router::dispatch(const http_request& request,
                                                           std::string& label) {
    const auto question = request.target.find('?');
    const std::string path = request.target.substr(0, question);
    const auto segments = segments_of(path);
    std::vector<std::pair<const route*, std::vector<std::string>>> matched;
    // The routes' patterns, split once.
    static const auto patterns = [] {
        std::vector<std::vector<std::string>> split;
        for (const route& r : routes()) {
            split.push_back(segments_of(r.pattern));
        }
        return split;
    }();
    for (std::size_t i = 0; i < routes().size(); ++i) {
        const route& r = routes()[i];
        if (auto params = match(patterns[i], segments)) {
            matched.emplace_back(&r, std::move(*params));
        }
    }
    if (!matched.empty()) {
        label = std::string(matched.front().first->pattern);
    }
    // Everything under /v1 needs the token, even a path that does not exist.
    if (!segments.empty() && segments[0] == "v1") {
        if (!authorized(request)) {
            http_response response = error_response(
                401, "unauthorized",
                "this API needs \"Authorization: Bearer <token>\" with the right token");
            response.headers.emplace_back("WWW-Authenticate", "Bearer");
            co_return response;
        }
        // Until every backend's catalog is read, memory holds none of the live leases and none
        // of the client-initialized templates: an answer now would be a wrong 404.
        if (auto why = engine_.not_serving()) {
            throw api_error(503, "not_ready", "pgleased is starting: " + *why, seconds(1));
        }
    }
    if (matched.empty()) {
        throw api_error(404, "not_found", "no such path: " + path);
    }
    std::string allowed;
    for (auto& [r, params] : matched) {
        if (r->method == request.method) {
            const call c{
                request, std::move(params),
                parse_query(question == std::string::npos ? ""
                                                          : request.target.substr(question + 1))};
            co_return co_await (this->*(r->answer))(c);
        }
        allowed += (allowed.empty() ? "" : ", ") + std::string(r->method);
    }
    throw api_error(405, "method_not_allowed",
                    request.method + " is not allowed here; use " + allowed)
        .with_allow(allowed);
}

boost::asio::awaitable<http_response> api_router::health(const call&) {
    co_return json_response(200, {{"status", "ok"}});
}

boost::asio::awaitable<http_response> api_router::readiness(const call&) {
    const lease_engine::readiness state = engine_.ready();
    std::string detail;
    for (const auto& problem : state.problems) {
        detail += (detail.empty() ? "" : "; ") + problem;
    }
    if (!state.ready) {
        co_return error_response(503, "not_ready",
                                 detail.empty() ? "no backend is reachable yet"
                                                : "cannot serve every template: " + detail,
                                 seconds(1));
    }
    if (!detail.empty()) {
        // Every template is served by some backend: a balancer keeps sending work here.
        co_return json_response(200, {{"status", "degraded"}, {"detail", detail}});
    }
    co_return json_response(200, {{"status", "ready"}});
}

boost::asio::awaitable<http_response> api_router::metrics(const call&) {
    http_response response;
    response.content_type = metrics_content_type;
    response.body = metrics_text_();
    co_return response;
}

boost::asio::awaitable<http_response> api_router::list_templates(const call& c) {
    no_query(c.query);
    json list = json::array();
    for (const auto& status : engine_.templates()) {
        list.push_back(template_json(status));
    }
    co_return json_response(200, {{"templates", list}});
}

boost::asio::awaitable<http_response> api_router::get_template(const call& c) {
    no_query(c.query);
    co_return json_response(200, template_json(template_or_404(engine_, c.params[0])));
}

boost::asio::awaitable<http_response> api_router::ensure_template(const call& c) {
    no_query(c.query);
    const std::string& name = c.params[0];
    check_template_name(name);
    request_fields fields(c.request.body);
    const auto fingerprint = fields.text("fingerprint", 128);
    const auto wait = fields.integer("wait_seconds", 0, 600);
    const auto build_ttl = fields.integer("build_ttl_seconds", 1, 3600);
    fields.reject_unknown();
    if (!fingerprint || !is_client_fingerprint(*fingerprint)) {
        throw api_error(400, "invalid_argument",
                        "fingerprint is required: 1 to 128 characters of A-Z a-z 0-9 . _ -");
    }
    auto outcome = co_await engine_.ensure_client_template(
        name, *fingerprint, seconds(wait.value_or(30)), seconds(build_ttl.value_or(600)));
    if (outcome.ready) {
        co_return json_response(200,
                                {{"state", "ready"}, {"template", template_json(outcome.status)}});
    }
    co_return json_response(201, {{"state", "build"},
                                  {"template", template_json(outcome.status)},
                                  {"build", build_json(*outcome.build)}});
}

namespace {

std::string build_id_of(const http_request& request) {
    request_fields fields(request.body);
    const auto build_id = fields.text("build_id", 64);
    fields.reject_unknown();
    if (!build_id) {
        throw api_error(400, "invalid_argument", "build_id is required");
    }
    return *build_id;
}

}  // namespace

boost::asio::awaitable<http_response> api_router::finalize_build(const call& c) {
    no_query(c.query);
    const std::string build_id = build_id_of(c.request);
    auto status = co_await engine_.finalize_build(c.params[0], c.params[1], build_id);
    co_return json_response(200, template_json(status));
}

boost::asio::awaitable<http_response> api_router::abort_build(const call& c) {
    no_query(c.query);
    const std::string build_id = build_id_of(c.request);
    co_await engine_.abort_build(c.params[0], c.params[1], build_id);
    co_return no_content();
}

boost::asio::awaitable<http_response> api_router::acquire(const call& c) {
    no_query(c.query);
    const template_status status = template_or_404(engine_, c.params[0]);
    request_fields fields(c.request.body);
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
    if (auto fingerprint = fields.text("fingerprint", 128)) {
        if (!is_client_fingerprint(*fingerprint)) {
            throw api_error(400, "invalid_argument",
                            "fingerprint: 1 to 128 characters of A-Z a-z 0-9 . _ -");
        }
        acquire.fingerprint = std::move(*fingerprint);
    }
    fields.reject_unknown();
    auto lease = co_await engine_.acquire(c.params[0], std::move(acquire));
    http_response answer = json_response(201, lease_json(lease, true));
    // A client gone before its answer never learns the lease id: the lease would hold its clone
    // until the TTL. It is released (recycled: nothing says what the client did) instead.
    const auto executor = co_await boost::asio::this_coro::executor;
    answer.undelivered = [this, executor, id = lease.id, name = lease.database] {
        spdlog::info("db={} lease answer not delivered (the client left); releasing it", name);
        boost::asio::co_spawn(executor, engine_.release(id, release_mode::recycle, std::nullopt),
                              [name](const std::exception_ptr& failure) {
                                  if (failure) {
                                      try {
                                          std::rethrow_exception(failure);
                                      } catch (const std::exception& e) {
                                          spdlog::warn("db={} undelivered lease not released: {}",
                                                       name, e.what());
                                      }
                                  }
                              });
    };
    co_return answer;
}

boost::asio::awaitable<http_response> api_router::list_leases(const call& c) {
    no_query(c.query);
    json list = json::array();
    for (const auto& lease : engine_.leases()) {
        list.push_back(lease_json(lease, false));
    }
    co_return json_response(200, {{"leases", list}});
}

boost::asio::awaitable<http_response> api_router::get_lease(const call& c) {
    no_query(c.query);
    co_return json_response(200, lease_json(lease_or_404(engine_, c.params[0]), true));
}

boost::asio::awaitable<http_response> api_router::release(const call& c) {
    const std::string& id = c.params[0];
    const lease_info lease = lease_or_404(engine_, id);
    release_mode mode = release_mode::recycle;
    std::optional<seconds> keep_for;
    for (const auto& [name, value] : c.query) {
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
            throw api_error(400, "invalid_argument", "unknown query parameter \"" + name + "\"");
        }
    }
    if (auto keep = c.query.find("keep_seconds"); keep != c.query.end()) {
        if (mode != release_mode::keep) {
            throw api_error(400, "invalid_argument", "keep_seconds goes only with mode=keep");
        }
        const auto limits = template_or_404(engine_, lease.template_name);
        keep_for = seconds(query_integer("keep_seconds", keep->second, 1, limits.max_keep.count()));
    }
    co_await engine_.release(id, mode, keep_for);
    co_return no_content();
}

boost::asio::awaitable<http_response> api_router::renew(const call& c) {
    no_query(c.query);
    const std::string& id = c.params[0];
    const lease_info lease = lease_or_404(engine_, id);
    const auto limits = template_or_404(engine_, lease.template_name);
    request_fields fields(c.request.body);
    const auto ttl = fields.integer("ttl_seconds", 1, limits.max_ttl.count());
    fields.reject_unknown();
    auto renewed =
        co_await engine_.renew(id, ttl ? std::optional<seconds>(seconds(*ttl)) : std::nullopt);
    co_return json_response(200, lease_json(renewed, true));
}

boost::asio::awaitable<http_response> api_router::reset(const call& c) {
    no_query(c.query);
    request_fields fields(c.request.body);
    fields.reject_unknown();
    auto answer = co_await engine_.reset(c.params[0]);
    json body = lease_json(answer.lease, true);
    body["reset"] = {{"result", answer.result}, {"reason", answer.reason}};
    co_return json_response(200, body);
}

}  // namespace pglease
