#pragma once

#include <array>
#include <chrono>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/setting_table.hpp"
#include "config/settings.hpp"

// The keys of each object in the config file, each declared once with its type and range: the
// reader rejects any other key and checks every value against these.
namespace pglease::config_keys {

inline constexpr long long day = 24LL * 3600;
inline constexpr long long week = 7 * day;
inline constexpr long long unlimited = std::numeric_limits<long long>::max();
inline constexpr int_range any_length{0, unlimited};
inline constexpr int_range non_empty{1, unlimited};
/// PostgreSQL truncates identifiers past 63 bytes, so a longer name would silently name another.
inline constexpr int_range identifier_length{1, 63};

/// What a path read from the file must name.
enum class existence { none, anything, directory };

/// The accepted values of one key: an integer's range or a text's length, the choices of a text
/// (matched case-insensitively, stored as spelled here), what a path must name.
struct key_limits {
    int_range range = any_length;
    std::span<const std::string_view> choices = {};
    existence must_exist = existence::none;
};

/// One key of a JSON object and the member of T it sets.
template <class T>
struct config_key {
    std::string_view key;
    std::variant<int T::*, bool T::*, std::chrono::seconds T::*, std::string T::*,
                 std::optional<std::string> T::*, std::filesystem::path T::*,
                 std::vector<std::filesystem::path> T::*, pool_settings T::*, lease_settings T::*>
        member;
    key_limits limit = {};
};

inline constexpr std::array<std::string_view, 2> strategies{"FILE_COPY", "WAL_LOG"};
inline constexpr std::array<std::string_view, 2> recycle_strategies{"reset", "reclone"};

inline constexpr std::array pool_keys{
    config_key<pool_settings>{"min_idle", &pool_settings::min_idle, {.range = {0, 10000}}},
    config_key<pool_settings>{"max_total", &pool_settings::max_total, {.range = {1, 100000}}},
    config_key<pool_settings>{"strategy", &pool_settings::strategy, {.choices = strategies}},
    config_key<pool_settings>{"recycle", &pool_settings::recycle, {.choices = recycle_strategies}},
};

inline constexpr std::array lease_keys{
    config_key<lease_settings>{"ttl_seconds", &lease_settings::ttl, {.range = {1, week}}},
    config_key<lease_settings>{"max_ttl_seconds", &lease_settings::max_ttl, {.range = {1, week}}},
    config_key<lease_settings>{"keep_seconds", &lease_settings::keep, {.range = {1, 30 * day}}},
    config_key<lease_settings>{
        "max_keep_seconds", &lease_settings::max_keep, {.range = {1, 30 * day}}},
    config_key<lease_settings>{"wait_seconds", &lease_settings::wait, {.range = {0, day}}},
    config_key<lease_settings>{"max_wait_seconds", &lease_settings::max_wait, {.range = {0, day}}},
};

inline constexpr std::array template_keys{
    config_key<template_settings>{
        "migrations", &template_settings::migrations, {.must_exist = existence::directory}},
    config_key<template_settings>{
        "database", &template_settings::database, {.range = identifier_length}},
    config_key<template_settings>{"command", &template_settings::command, {.range = non_empty}},
    config_key<template_settings>{
        "watch", &template_settings::watch, {.must_exist = existence::anything}},
    config_key<template_settings>{
        "fingerprint", &template_settings::fingerprint, {.range = {1, 256}}},
    config_key<template_settings>{
        "lease_role", &template_settings::lease_role, {.range = identifier_length}},
    config_key<template_settings>{"lease_password", &template_settings::lease_password},
    config_key<template_settings>{
        "build_timeout_seconds", &template_settings::build_timeout, {.range = {1, day}}},
    config_key<template_settings>{"pool", &template_settings::pool},
    config_key<template_settings>{"lease", &template_settings::lease},
};

inline constexpr std::array backend_keys{
    config_key<backend_settings>{"name", &backend_settings::name},
    config_key<backend_settings>{"url", &backend_settings::url, {.range = non_empty}},
    config_key<backend_settings>{"max_parallel_clones",
                                 &backend_settings::max_parallel_clones,
                                 {.range = parallel_clones_range}},
    config_key<backend_settings>{
        "max_databases", &backend_settings::max_databases, {.range = databases_range}},
    config_key<backend_settings>{
        "lease_role", &backend_settings::lease_role, {.range = identifier_length}},
    config_key<backend_settings>{"lease_password", &backend_settings::lease_password},
    config_key<backend_settings>{"per_lease_roles", &backend_settings::per_lease_roles},
};

inline constexpr std::array defaults_keys{
    config_key<settings>{"pool", &settings::default_pool},
    config_key<settings>{"lease", &settings::default_lease},
    config_key<settings>{
        "version_idle_seconds", &settings::default_version_idle, {.range = {1, 30 * day}}},
};

}  // namespace pglease::config_keys
