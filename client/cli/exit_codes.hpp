#pragma once

#include <string>

#include "pglease/client.hpp"

namespace pglease::cli {

/// pglease's own exit codes (README.md lists them).
enum exit_code : int {
    ok = 0,
    usage = 2,
    unreachable = 3,
    unavailable = 4,  // 503: pool exhausted, template building or failed, backend down; 409
    server_error = 5,
    unauthorized = 6,
    not_found = 7,
    cannot_execute = 127,
};

/// The exit code for an error of the server or the connection.
inline int exit_code_of(const client::error& e) {
    switch (e.status()) {
        case 0:
            return e.code() == "unreachable" ? unreachable : usage;
        case 401:
            return unauthorized;
        case 404:
            return not_found;
        case 409:  // a reset refused while a session is busy
        case 503:
            return unavailable;
        default:
            return server_error;
    }
}

}  // namespace pglease::cli
