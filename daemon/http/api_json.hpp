#pragma once

// The JSON shapes of the API (proto/openapi.yaml): leases, templates, builds, errors.

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "broker/lease_types.hpp"
#include "http/http_message.hpp"

namespace pglease {

/// RFC 3339 UTC with milliseconds: 2026-11-22T03:14:26.123Z.
std::string api_timestamp(std::chrono::system_clock::time_point t);

/// A lease; `with_secrets` adds the id, dsn and password (only its holder sees them).
nlohmann::json lease_json(const lease_info& lease, bool with_secrets);
nlohmann::json template_json(const template_status& status);
nlohmann::json build_json(const build_info& build);

/// A response with `body`.
http_response json_response(int status, const nlohmann::json& body);
/// 204, no body.
http_response no_content();
/// {"error": {"code", "message"}}, with Retry-After when given.
http_response error_response(int status, const std::string& code, const std::string& message,
                             const std::optional<std::chrono::seconds>& retry_after = std::nullopt);

/// The status a broker_error code answers with.
int status_of(const std::string& code);

}  // namespace pglease
