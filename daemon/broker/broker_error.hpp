#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace pglease {

/// An expected refusal of a broker request, with a stable snake_case code the HTTP layer maps to
/// a status: unknown_template, unknown_lease, invalid_argument (4xx); pool_exhausted,
/// backend_down, template_failed, template_building (503, with a retry hint).
class broker_error : public std::runtime_error {
  public:
    broker_error(std::string code, const std::string& message,
                 std::optional<std::chrono::seconds> retry_after = std::nullopt)
        : std::runtime_error(message), code_(std::move(code)), retry_after_(retry_after) {}

    /// The snake_case error code.
    const std::string& code() const noexcept { return code_; }
    /// How long a client should wait before trying again, for temporary conditions.
    const std::optional<std::chrono::seconds>& retry_after() const noexcept { return retry_after_; }

  private:
    std::string code_;
    std::optional<std::chrono::seconds> retry_after_;
};

}  // namespace pglease
