#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace pglease {

/// Inclusive bounds of an integer setting.
struct int_range {
    long long min;
    long long max;
};

/// Bounds shared by the embedded cluster's and each backend's clone limits.
inline constexpr int_range parallel_clones_range{1, 64};
inline constexpr int_range databases_range{1, 100000};

/// How a top-level setting is spelled in the config file.
enum class setting_type { text, integer, path, boolean };

/// One top-level scalar setting: its config-file key, flag and variable, its help, and how a
/// value given as text is checked and stored.
struct setting {
    /// Key path in the config file ("embedded.max_databases"); empty when the file cannot set it.
    std::string_view key;
    std::string_view flag;
    std::string_view env;
    /// Placeholder for the value in --help.
    std::string_view value_name;
    setting_type type;
    std::string_view help;
    /// The default --help shows when the built-in value is chosen only at run time.
    std::string_view automatic_default;
    /// Stores `text` in `s` (a relative path resolved against `base`); returns the problem, if any.
    std::optional<std::string> (*apply)(settings& s, std::string_view text,
                                        const std::filesystem::path& base);
    /// The value held by `s` as text; empty when it is chosen at run time.
    std::string (*show)(const settings& s);
};

/// Every top-level scalar setting, in --help order.
std::span<const setting> setting_table();

/// The problem with `name` as a [a-z][a-z0-9_]{0,max_length-1} identifier, or std::nullopt.
std::optional<std::string> identifier_problem(std::string_view name, std::size_t max_length);

/// Reads `text` as an integer within `range` into `value`; returns the problem, if any.
std::optional<std::string> parse_integer(std::string_view text, int_range range, long long& value);

/// `text` as a JSON string literal, so a message shows odd bytes unambiguously.
std::string json_quoted(std::string_view text);

}  // namespace pglease
