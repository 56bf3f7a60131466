#pragma once

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "pg/result.hpp"

namespace pglease::pg {

/// Parameters of one statement: text values, std::nullopt for SQL NULL.
using params = std::vector<std::optional<std::string>>;

namespace detail {
inline std::optional<std::string> to_param(std::nullopt_t) {
    return std::nullopt;
}
inline std::optional<std::string> to_param(const std::optional<std::string>& v) {
    return v;
}
inline std::optional<std::string> to_param(const std::string& v) {
    return v;
}
inline std::optional<std::string> to_param(std::string_view v) {
    return std::string(v);
}
inline std::optional<std::string> to_param(const char* v) {
    return std::string(v);
}
template <std::integral I>
std::optional<std::string> to_param(I v) {
    return std::to_string(v);
}
}  // namespace detail

/// One libpq connection driven without blocking from an Asio executor with C++20 coroutines.
///
/// Not thread-safe: use it from the executor's single thread. One statement at a time. After a
/// connection_error, a timeout that could not be cancelled, or a cancelled coroutine, the
/// connection is closed and every later call throws connection_error.
class connection {
  public:
    static constexpr std::chrono::milliseconds default_timeout{30'000};

    /// Opens a connection (libpq keyword/value string or URI) within `timeout`.
    static boost::asio::awaitable<connection> connect(std::string conninfo,
                                                      std::chrono::milliseconds timeout);

    /// A connection that is not connected (usable() is false).
    connection() noexcept;
    connection(connection&& other) noexcept;
    connection& operator=(connection&& other) noexcept;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    /// Runs `sql` (one or more statements, no parameters) and returns the last statement's rows.
    boost::asio::awaitable<result> exec(std::string sql,
                                        std::chrono::milliseconds timeout = default_timeout);

    /// Runs one statement with $1.. parameters and returns its rows.
    boost::asio::awaitable<result> exec(std::string sql, params values,
                                        std::chrono::milliseconds timeout = default_timeout);

    /// Runs one statement with $1.. bound to `args` (strings, integers, std::nullopt for NULL).
    /// Builds the parameter list outside any co_await expression (GCC 12 miscompiles braced
    /// lists there).
    template <typename... Args>
    boost::asio::awaitable<result> query(std::string sql, const Args&... args) {
        params values;
        values.reserve(sizeof...(args));
        (values.push_back(detail::to_param(args)), ...);
        return exec(std::move(sql), std::move(values));
    }

    /// Runs `copy_statement` (COPY … TO STDOUT) and hands its data to `sink`, a row or so at a
    /// time. Returns the rows copied.
    boost::asio::awaitable<std::size_t> copy_out(
        std::string copy_statement, std::function<void(std::string_view)> sink,
        std::chrono::milliseconds timeout = default_timeout);

    /// Runs `copy_statement` (COPY … FROM STDIN), feeding it the chunks `source` returns until
    /// it returns an empty one. Returns the rows copied.
    boost::asio::awaitable<std::size_t> copy_in(
        std::string copy_statement, std::function<std::string_view()> source,
        std::chrono::milliseconds timeout = default_timeout);

    /// True while the connection can run statements.
    bool usable() const noexcept;
    /// Server process id of this session (for pg_terminate_backend and logs).
    int backend_pid() const noexcept;
    /// Closes the connection now; later calls throw connection_error.
    void close() noexcept;

    /// `name` quoted as an SQL identifier (PQescapeIdentifier).
    std::string quote_identifier(std::string_view name) const;
    /// `text` quoted as an SQL string literal (PQescapeLiteral).
    std::string quote_literal(std::string_view text) const;

  private:
    struct state;
    explicit connection(std::unique_ptr<state> s) noexcept;

    boost::asio::awaitable<result> run(std::string sql, std::optional<params> values,
                                       std::chrono::milliseconds timeout);

    std::unique_ptr<state> state_;
};

}  // namespace pglease::pg
