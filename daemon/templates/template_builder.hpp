#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/awaitable.hpp>

namespace pglease {

struct template_settings;
struct clone_access;

namespace pg {
class connection;
}

/// A template source could not be applied; the message says which file or command and why.
class build_error : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Where a template database being built is, and who builds it.
struct build_target {
    /// The admin's connection string to the template database.
    std::string admin_conninfo;
    std::string database;
    std::string lease_role;
    /// What a migration command connects to: the lease role over TCP.
    std::string host;
    std::uint16_t port = 0;
    std::string lease_password;
    /// Where a migration command runs: the config file's directory.
    std::filesystem::path working_dir;
};

/// Applies the .sql files of `source.migrations` in lexical order, each in its own transaction,
/// as the lease role, so everything they create belongs to it.
boost::asio::awaitable<void> apply_migrations(const template_settings& source,
                                              const build_target& target);

/// Runs `source.command` with DATABASE_URL and PG* pointing at the template database as the
/// lease role; its output goes to the log.
boost::asio::awaitable<void> run_migration_command(const template_settings& source,
                                                   const build_target& target);

/// Throws build_error when objects in the database `conn` is connected to (a copy of `source`'s
/// database) belong to a role other than `lease_role`, which workers would then not be able to
/// alter or truncate. The message names the objects, their owners and what to set.
boost::asio::awaitable<void> check_object_owners(pg::connection& conn,
                                                 const template_settings& source,
                                                 const std::string& lease_role);

struct version_snapshot;

/// Records what the template database at `admin_conninfo` holds into `dir`, for resets in
/// place; nullptr (and a warning naming `template_name`) when it cannot, and the version is
/// then recycled by cloning again.
boost::asio::awaitable<std::shared_ptr<const version_snapshot>> record_snapshot(
    std::string admin_conninfo, std::filesystem::path dir, std::string template_name);

/// The statement that creates template database `database` from `source`: owned by the lease
/// role, or with per-lease roles by the admin and closed until open_template opens it.
std::string create_template_sql(const pg::connection& conn, const std::string& database,
                                const std::string& source, const clone_access& access);

/// Records `comment` on the template database `database` just created; with per-lease roles
/// also opens it to the lease role alone (`access.connect_role`), which may create in it and in
/// its public schema (over a connection to it at `admin_conninfo`).
boost::asio::awaitable<void> open_template(pg::connection& conn, std::string admin_conninfo,
                                           std::string database, clone_access access,
                                           std::string comment);

/// Closes a built template database to connections, marks it a template, ends the sessions on
/// it, and records `ready` (its comment) on it.
boost::asio::awaitable<void> seal_template(pg::connection& conn, std::string database,
                                           std::string ready_comment);

/// The fingerprint of an existing database's schema (tables, columns, indexes, functions), read
/// over `conn`, which is connected to it.
boost::asio::awaitable<std::string> schema_fingerprint(pg::connection& conn);

}  // namespace pglease
