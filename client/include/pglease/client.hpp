#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

/// The C++ client of pgleased's HTTP API (proto/openapi.yaml).
namespace pglease::client {

/// An error the server answered with ({"error": {"code", "message"}}), or, with status 0 and
/// code "unreachable", a server that could not be reached.
class error : public std::runtime_error {
  public:
    error(int status, std::string code, const std::string& message)
        : std::runtime_error(message), status_(status), code_(std::move(code)) {}
    /// The HTTP status (0: no answer).
    int status() const noexcept { return status_; }
    /// The server's error code: pool_exhausted, unknown_template, unauthorized, …
    const std::string& code() const noexcept { return code_; }

  private:
    int status_;
    std::string code_;
};

/// The server could not be reached (refused, timed out, name not resolved).
class unreachable_error : public error {
  public:
    explicit unreachable_error(const std::string& message) : error(0, "unreachable", message) {}
};

/// How a released database is treated: dropped and replaced, handed out again as it is (the
/// worker wrote nothing), or kept for inspection.
enum class release_mode { recycle, reuse, keep };

/// What to ask for when acquiring; unset fields take the template's defaults.
struct lease_options {
    std::optional<std::chrono::seconds> ttl;
    std::optional<std::chrono::seconds> wait;
    std::string owner;
    std::map<std::string, std::string> labels;
    /// The version to lease, by fingerprint (as given to ensure_template, or as a lease or the
    /// template reports it); empty: the template's newest.
    std::string fingerprint;
};

/// A leased database and how to connect to it.
struct lease_data {
    std::string id;
    std::string template_name;
    std::string fingerprint;
    std::string database;
    std::string dsn;  // postgresql://user:password@host:port/database
    std::string host;
    std::uint16_t port = 0;
    std::string user;
    std::string password;
    std::string backend;
    std::chrono::system_clock::time_point expires_at;
};

/// What a sticky reset came to: the same lease, made as fresh as a new clone, "reset" (in
/// place: the holder's idle sessions stayed connected) or "reclone" (cloned again under its
/// name: its sessions were ended), and why when recloned.
struct reset_data {
    lease_data lease;
    std::string result;
    std::string reason;
};

/// A template and its pool.
struct template_data {
    std::string name;
    std::string state;  // building, ready, failed
    std::string source;
    std::string fingerprint;
    std::string error;
    int idle = 0;
    int leased = 0;
    int creating = 0;
    int dropping = 0;
    int kept = 0;
    int resetting = 0;
    int waiters = 0;
    int min_idle = 0;
    int max_total = 0;
    std::string recycle;  // reset or reclone
};

/// A synchronous connection to pgleased with keep-alive. Not thread-safe: one per thread.
class client {
  public:
    /// `base_url` empty: $PGLEASE_URL, else http://127.0.0.1:7432. `token` empty:
    /// $PGLEASE_TOKEN. Requests time out after `timeout` plus any wait they ask for; a pgleased
    /// that is still starting (503 not_ready) is asked again until `timeout` has passed.
    explicit client(std::string base_url = {}, std::string token = {},
                    std::chrono::seconds timeout = std::chrono::seconds(30));
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    client(client&&) noexcept;
    client& operator=(client&&) noexcept;
    ~client();

    /// Leases a database cloned from `template_name`.
    lease_data acquire(const std::string& template_name, const lease_options& options = {});
    /// Extends lease `id` by `ttl` (default: the template's).
    lease_data renew(const std::string& id, std::optional<std::chrono::seconds> ttl = {});
    /// Makes lease `id`'s database as fresh as a new clone and keeps the lease (same database
    /// and DSN), so the caller's connections stay open across tests. Throws error with code
    /// sessions_busy (409) while one of its sessions is in a transaction or running a query.
    reset_data reset(const std::string& id);
    /// Ends lease `id`; `keep_for` only with release_mode::keep.
    void release(const std::string& id, release_mode mode = release_mode::recycle,
                 std::optional<std::chrono::seconds> keep_for = {});
    /// Every template with its pool counts.
    std::vector<template_data> templates();
    /// One template.
    template_data template_status(const std::string& name);

    const std::string& base_url() const noexcept;
    const std::string& token() const noexcept;

  private:
    struct connection;
    std::unique_ptr<connection> connection_;
};

/// A lease held for a scope: acquired in the constructor, released (synchronously) in the
/// destructor, also when an exception unwinds. With auto_renew it renews itself in the
/// background while held, so work longer than its TTL keeps it.
class lease {
  public:
    /// Acquires on a connection of its own to `c`'s server.
    lease(const client& c, const std::string& template_name, const lease_options& options = {},
          bool auto_renew = false);
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    /// Releases with the mode set by release_with() (default recycle); errors are swallowed.
    ~lease();

    const lease_data& data() const noexcept { return data_; }
    const std::string& dsn() const noexcept { return data_.dsn; }
    const std::string& id() const noexcept { return data_.id; }

    /// Makes the database fresh again for the next test, keeping the lease and connections that
    /// are idle outside a transaction (client::reset).
    reset_data reset();
    /// The mode the destructor releases with (e.g. reuse when the test wrote nothing).
    void release_with(release_mode mode, std::optional<std::chrono::seconds> keep_for = {});
    /// Releases now; throws on failure. The destructor then does nothing.
    void release();

  private:
    void stop_renewing();

    client client_;
    lease_data data_;
    release_mode mode_ = release_mode::recycle;
    std::optional<std::chrono::seconds> keep_for_;
    bool released_ = false;
    struct renewer;
    std::unique_ptr<renewer> renewer_;
};

/// "90s", "10m", "1h", "2h30m" or a number of seconds; std::nullopt when malformed.
std::optional<std::chrono::seconds> parse_duration(const std::string& text);

}  // namespace pglease::client
