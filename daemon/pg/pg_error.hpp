#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace pglease::pg {

/// A failure talking to PostgreSQL: names the libpq call, the message and, when the server sent
/// one, the SQLSTATE.
class pg_error : public std::runtime_error {
  public:
    pg_error(std::string call, std::string message, std::string sqlstate = {});

    /// The libpq function that reported the failure, e.g. "PQconnectPoll".
    const std::string& call() const noexcept { return call_; }
    /// The five-character SQLSTATE, or empty when the failure did not come from the server.
    const std::string& sqlstate() const noexcept { return sqlstate_; }
    /// The message without the call name and SQLSTATE decoration.
    const std::string& message() const noexcept { return message_; }

  private:
    std::string call_;
    std::string message_;
    std::string sqlstate_;
};

/// The connection could not be opened or was lost; the connection is no longer usable.
class connection_error : public pg_error {
    using pg_error::pg_error;
};

/// A statement or connect attempt ran past its deadline.
class timeout_error : public pg_error {
    using pg_error::pg_error;
};

/// The server rejected a statement (syntax, constraint, permission, ...).
class server_error : public pg_error {
    using pg_error::pg_error;
};

/// The server says the named object already exists (SQLSTATE class 42P04/42P06/42P07/42710).
class duplicate_object_error : public server_error {
    using server_error::server_error;
};

/// The server says the named database or object does not exist (3D000, 42P01, 42704, ...).
class undefined_object_error : public server_error {
    using server_error::server_error;
};

/// The object is in use by other sessions (55006) or locked (55P03).
class object_in_use_error : public server_error {
    using server_error::server_error;
};

/// Throws the error type that fits `sqlstate` (falling back to server_error).
[[noreturn]] void throw_server_error(std::string call, std::string message,
                                     std::string_view sqlstate);

/// True when `sqlstate` says the session or server went away (classes 08, 57P01..57P03).
bool sqlstate_means_connection_lost(std::string_view sqlstate) noexcept;

}  // namespace pglease::pg
