#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace pglease {

/// A request the API refuses: the status, the snake_case code and a message for the caller.
class api_error : public std::runtime_error {
  public:
    api_error(int status, std::string code, const std::string& message,
              std::optional<std::chrono::seconds> retry_after = std::nullopt)
        : std::runtime_error(message),
          status_(status),
          code_(std::move(code)),
          retry_after_(retry_after) {}

    int status() const noexcept { return status_; }
    const std::string& code() const noexcept { return code_; }
    const std::optional<std::chrono::seconds>& retry_after() const noexcept { return retry_after_; }
    /// For 405: the methods the path takes ("GET, PUT").
    const std::string& allow() const noexcept { return allow_; }
    api_error& with_allow(std::string methods) {
        allow_ = std::move(methods);
        return *this;
    }

  private:
    std::string allow_;
    int status_;
    std::string code_;
    std::optional<std::chrono::seconds> retry_after_;
};

}  // namespace pglease
