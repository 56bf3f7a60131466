#include "pg/result.hpp"

#include <cstdlib>
#include <stdexcept>

#include <libpq-fe.h>

namespace pglease::pg {

void result::clear_result::operator()(pg_result* raw) const noexcept {
    PQclear(raw);
}

result::result(pg_result* raw) noexcept : raw_(raw) {}

std::size_t result::rows() const noexcept {
    return raw_ ? static_cast<std::size_t>(PQntuples(raw_.get())) : 0;
}

std::size_t result::columns() const noexcept {
    return raw_ ? static_cast<std::size_t>(PQnfields(raw_.get())) : 0;
}

std::string_view result::column_name(std::size_t column) const {
    if (column >= columns()) {
        throw std::out_of_range("column " + std::to_string(column) + " out of range");
    }
    return PQfname(raw_.get(), static_cast<int>(column));
}

std::size_t result::column_index(std::string_view name) const {
    for (std::size_t i = 0; i < columns(); ++i) {
        if (column_name(i) == name) {
            return i;
        }
    }
    throw std::out_of_range("no column named \"" + std::string(name) + "\"");
}

void result::check_position(std::size_t row, std::size_t column) const {
    if (row >= rows() || column >= columns()) {
        throw std::out_of_range("value (" + std::to_string(row) + ", " + std::to_string(column) +
                                ") outside a result of " + std::to_string(rows()) + "x" +
                                std::to_string(columns()));
    }
}

bool result::is_null(std::size_t row, std::size_t column) const {
    check_position(row, column);
    return PQgetisnull(raw_.get(), static_cast<int>(row), static_cast<int>(column)) == 1;
}

std::string_view result::value(std::size_t row, std::size_t column) const {
    check_position(row, column);
    const auto r = static_cast<int>(row);
    const auto c = static_cast<int>(column);
    return {PQgetvalue(raw_.get(), r, c), static_cast<std::size_t>(PQgetlength(raw_.get(), r, c))};
}

std::optional<std::string> result::optional_value(std::size_t row, std::size_t column) const {
    if (is_null(row, column)) {
        return std::nullopt;
    }
    return std::string(value(row, column));
}

std::size_t result::affected_rows() const noexcept {
    if (!raw_) {
        return 0;
    }
    const char* tuples = PQcmdTuples(raw_.get());
    return (tuples && *tuples) ? std::strtoull(tuples, nullptr, 10) : 0;
}

std::string_view result::command_tag() const noexcept {
    return raw_ ? PQcmdStatus(raw_.get()) : "";
}

}  // namespace pglease::pg
