#pragma once

// CREATE DATABASE … TEMPLATE and the clone's first catalog comment: the one statement sequence
// behind a new clone of the pool and a sticky lease's clone made again under its name.

#include <string>

#include <boost/asio/awaitable.hpp>

#include "catalog/catalog_comment.hpp"
#include "pool/lease_access.hpp"

namespace pglease {

namespace pg {
class connection;
}

/// What a clone is made of.
struct clone_spec {
    std::string name;
    clone_access access;   // who owns it and who may connect
    std::string source;    // the template database
    std::string strategy;  // FILE_COPY or WAL_LOG
};

/// Clones `spec.source` into `spec.name`, then commits `comment` on it (with per-lease roles,
/// together with its privileges: it accepts no connection before) (durably: a lease in it
/// must survive a backend crash) with the baseline of its first reset in place, the WAL position
/// after the copy: nothing before is a lease's. Returns that baseline. Throws pg::pg_error.
boost::asio::awaitable<reset_baseline> clone_database(pg::connection& conn, const clone_spec& spec,
                                                      catalog_comment comment);

}  // namespace pglease
