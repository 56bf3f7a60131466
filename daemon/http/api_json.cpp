#include "http/api_json.hpp"

#include <algorithm>
#include <ctime>

namespace pglease {

using json = nlohmann::json;

std::string api_timestamp(std::chrono::system_clock::time_point t) {
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
             {"acquired_at", api_timestamp(lease.acquired_at)},
             {"expires_at", api_timestamp(lease.expires_at)},
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
            {"state", to_string(status.state)},
            {"error", status.error},
            {"source", status.source},
            {"pool",
             {{"idle", status.pool.idle},
              {"leased", status.pool.leased},
              {"creating", status.pool.creating},
              {"dropping", status.pool.dropping},
              {"kept", status.pool.kept},
              {"resetting", status.pool.resetting},
              {"waiters", status.pool.waiters},
              {"min_idle", status.pool.min_idle},
              {"max_total", status.pool.max_total},
              {"recycle", status.pool.recycle}}},
            {"versions", status.versions}};
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
            {"expires_at", api_timestamp(build.expires_at)}};
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
                             const std::optional<std::chrono::seconds>& retry_after) {
    http_response response =
        json_response(status, {{"error", {{"code", code}, {"message", message}}}});
    if (retry_after) {
        response.headers.emplace_back("Retry-After",
                                      std::to_string(std::max<long>(1, retry_after->count())));
    }
    return response;
}

int status_of(const std::string& code) {
    if (code == "unknown_template" || code == "unknown_lease" || code == "unknown_build" ||
        code == "unknown_version") {
        return 404;
    }
    if (code == "conflict" || code == "sessions_busy") {
        return 409;
    }
    if (code == "invalid_argument") {
        return 400;
    }
    return 503;  // pool_exhausted, backend_down, template_failed, template_building, not_ready
}

}  // namespace pglease
