#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace pglease {

/// Sends log lines to stderr at `level` (trace, debug, info, warn, error), as text or as JSON
/// lines (`format` "json": {"time","level","message"} plus each key=value pair of the message).
void init_logging(const std::string& level, const std::string& format = "text");

/// One log line as a JSON object (what --log-format json writes, without the newline).
std::string json_log_line(std::string_view time, std::string_view level, std::string_view message);

/// Lets through at most `burst` lines of one kind per `window`; counts the rest so the next line
/// let through can say how many were held back.
class log_rate_limit {
  public:
    explicit log_rate_limit(std::size_t burst = 5,
                            std::chrono::steady_clock::duration window = std::chrono::seconds(60))
        : burst_(burst), window_(window) {}

    /// std::nullopt: suppress this line. Otherwise the number of lines of this kind suppressed
    /// since the last one let through.
    std::optional<std::size_t> admit(
        const std::string& kind,
        std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  private:
    struct kind_state {
        std::chrono::steady_clock::time_point window_start;
        std::size_t passed = 0;
        std::size_t suppressed = 0;
    };
    std::size_t burst_;
    std::chrono::steady_clock::duration window_;
    std::mutex mutex_;
    std::map<std::string, kind_state> kinds_;
};

/// The process's limiter for warnings that can repeat (a flapping backend, a failing clone).
log_rate_limit& warning_rate_limit();

/// A warning of `kind` (e.g. "clone_failed backend=main template=app"), rate-limited: at most 5
/// per kind per minute, then one line saying how many were suppressed.
template <typename... Args>
void warn_limited(const std::string& kind, spdlog::format_string_t<Args...> format,
                  Args&&... args) {
    const auto suppressed = warning_rate_limit().admit(kind);
    if (!suppressed) {
        return;
    }
    if (*suppressed > 0) {
        spdlog::warn("{} similar warnings suppressed ({})", *suppressed, kind);
    }
    spdlog::warn(format, std::forward<Args>(args)...);
}

}  // namespace pglease
