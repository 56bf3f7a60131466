#include "pg/pg_error.hpp"

#include <utility>

namespace pglease::pg {
namespace {

std::string describe(const std::string& call, const std::string& message,
                     const std::string& sqlstate) {
    std::string text = call + ": " + message;
    if (!sqlstate.empty()) {
        text += " (SQLSTATE " + sqlstate + ")";
    }
    return text;
}

}  // namespace

pg_error::pg_error(std::string call, std::string message, std::string sqlstate)
    : std::runtime_error(describe(call, message, sqlstate)),
      call_(std::move(call)),
      message_(std::move(message)),
      sqlstate_(std::move(sqlstate)) {}

void throw_server_error(std::string call, std::string message, std::string_view sqlstate) {
    std::string state(sqlstate);
    if (state == "42P04" || state == "42P06" || state == "42P07" || state == "42710") {
        throw duplicate_object_error(std::move(call), std::move(message), std::move(state));
    }
    if (state == "3D000" || state == "42P01" || state == "42704" || state == "3F000") {
        throw undefined_object_error(std::move(call), std::move(message), std::move(state));
    }
    if (state == "55006" || state == "55P03") {
        throw object_in_use_error(std::move(call), std::move(message), std::move(state));
    }
    if (state == "57014") {
        throw timeout_error(std::move(call), std::move(message), std::move(state));
    }
    if (sqlstate_means_connection_lost(state)) {
        throw connection_error(std::move(call), std::move(message), std::move(state));
    }
    throw server_error(std::move(call), std::move(message), std::move(state));
}

bool sqlstate_means_connection_lost(std::string_view sqlstate) noexcept {
    return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
           sqlstate == "57P03";
}

}  // namespace pglease::pg
