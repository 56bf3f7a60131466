#include "logging.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>
#include <spdlog/details/fmt_helper.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace pglease {

namespace {

bool is_key_char(char c) {
    return std::islower(static_cast<unsigned char>(c)) != 0 ||
           std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// Writes each log line as one JSON object; the message's key=value words become fields too.
class json_formatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        time_.format(msg, time_text_);
        const auto level = spdlog::level::to_string_view(msg.level);
        const std::string line =
            json_log_line(std::string_view(time_text_.data(), time_text_.size()),
                          std::string_view(level.data(), level.size()),
                          std::string_view(msg.payload.data(), msg.payload.size()));
        time_text_.clear();
        dest.append(line.data(), line.data() + line.size());
        dest.push_back('\n');
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<json_formatter>();
    }

  private:
    spdlog::pattern_formatter time_{"%Y-%m-%dT%H:%M:%S.%e%z", spdlog::pattern_time_type::utc, ""};
    spdlog::memory_buf_t time_text_;
};

}  // namespace

std::string json_log_line(std::string_view time, std::string_view level, std::string_view message) {
    nlohmann::ordered_json line;
    line["time"] = time;
    line["level"] = level;
    line["message"] = message;
    // Context words "key=value" (template=app db=pglease_app_0042 lease=…): a field each, unless
    // the key is taken.
    std::size_t start = 0;
    while (start < message.size()) {
        auto end = message.find(' ', start);
        if (end == std::string_view::npos) {
            end = message.size();
        }
        const auto word = message.substr(start, end - start);
        const auto equals = word.find('=');
        if (equals != std::string_view::npos && equals > 0 && equals + 1 < word.size() &&
            std::all_of(word.begin(), word.begin() + static_cast<std::ptrdiff_t>(equals),
                        is_key_char)) {
            const std::string key(word.substr(0, equals));
            if (!line.contains(key)) {
                line[key] = word.substr(equals + 1);
            }
        }
        start = end + 1;
    }
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void init_logging(const std::string& level, const std::string& format) {
    auto logger = spdlog::stderr_color_mt("pgleased");
    if (format == "json") {
        logger->set_formatter(std::make_unique<json_formatter>());
    } else {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    }
    logger->set_level(spdlog::level::from_str(level));
    spdlog::set_default_logger(std::move(logger));
}

std::optional<std::size_t> log_rate_limit::admit(const std::string& kind,
                                                 std::chrono::steady_clock::time_point now) {
    const std::lock_guard lock(mutex_);
    auto [it, fresh] = kinds_.try_emplace(kind);
    kind_state& state = it->second;
    if (fresh || now - state.window_start >= window_) {
        state.window_start = now;
        state.passed = 0;
    }
    if (state.passed >= burst_) {
        ++state.suppressed;
        return std::nullopt;
    }
    ++state.passed;
    return std::exchange(state.suppressed, 0);
}

log_rate_limit& warning_rate_limit() {
    static log_rate_limit limit;
    return limit;
}

}  // namespace pglease
