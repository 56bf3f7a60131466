#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct pg_result;

namespace pglease::pg {

/// The rows of one statement, in text format. Owns its PGresult.
class result {
  public:
    result() = default;
    explicit result(pg_result* raw) noexcept;

    /// Number of rows returned.
    std::size_t rows() const noexcept;
    /// Number of columns returned.
    std::size_t columns() const noexcept;
    /// Name of column `column`.
    std::string_view column_name(std::size_t column) const;
    /// Index of the column named `name`; throws std::out_of_range when there is none.
    std::size_t column_index(std::string_view name) const;
    /// True when the value at (row, column) is SQL NULL.
    bool is_null(std::size_t row, std::size_t column) const;
    /// The text value at (row, column); empty for NULL. Throws std::out_of_range when outside.
    std::string_view value(std::size_t row, std::size_t column) const;
    /// The value, or std::nullopt for SQL NULL.
    std::optional<std::string> optional_value(std::size_t row, std::size_t column) const;
    /// Rows affected by INSERT/UPDATE/DELETE/... (0 when the command reports none).
    std::size_t affected_rows() const noexcept;
    /// The command tag, e.g. "CREATE DATABASE".
    std::string_view command_tag() const noexcept;

  private:
    void check_position(std::size_t row, std::size_t column) const;

    struct clear_result {
        void operator()(pg_result* raw) const noexcept;
    };
    std::unique_ptr<pg_result, clear_result> raw_;
};

}  // namespace pglease::pg
