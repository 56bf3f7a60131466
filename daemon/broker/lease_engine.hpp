#pragma once

// What the HTTP API asks of the engine: the broker implements it; tests/fuzz drives the API
// against a stand-in.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "broker/lease_types.hpp"

namespace pglease {

class lease_engine {
  public:
    virtual ~lease_engine() = default;

    /// Leases a clone of `template_name`; throws broker_error (unknown_template,
    /// unknown_version, pool_exhausted, backend_down, template_failed, template_building).
    virtual boost::asio::awaitable<lease_info> acquire(std::string template_name,
                                                       acquire_request request) = 0;
    /// Extends the lease `id` by `ttl` (default: the template's), capped by its max_ttl.
    virtual boost::asio::awaitable<lease_info> renew(std::string id,
                                                     std::optional<std::chrono::seconds> ttl) = 0;
    /// Ends the lease `id`.
    virtual boost::asio::awaitable<void> release(std::string id, release_mode mode,
                                                 std::optional<std::chrono::seconds> keep_for) = 0;
    /// Makes the database of lease `id` fresh again; the lease goes on. Throws broker_error
    /// (unknown_lease, sessions_busy, conflict, backend_down).
    virtual boost::asio::awaitable<reset_answer> reset(std::string id) = 0;

    /// Ensures client-initialized template `name` has a version with `fingerprint` (on the
    /// first backend): ready, ready within `wait`, or the caller's to build.
    virtual boost::asio::awaitable<client_template_outcome> ensure_client_template(
        std::string name, std::string fingerprint, std::chrono::seconds wait,
        std::chrono::seconds build_ttl) = 0;
    /// Makes a client's build the template's ready version.
    virtual boost::asio::awaitable<template_status> finalize_build(std::string name,
                                                                   std::string fingerprint,
                                                                   std::string build_id) = 0;
    /// Gives up a client's build.
    virtual boost::asio::awaitable<void> abort_build(std::string name, std::string fingerprint,
                                                     std::string build_id) = 0;

    /// Why the API cannot serve yet (a backend's catalog is not read, or this broker is a
    /// standby), or std::nullopt once every backend's catalog has been read.
    virtual std::optional<std::string> not_serving() const = 0;
    /// The lease `id`, if live; throws broker_error (not_ready, backend_down) while a backend
    /// that may hold it is rebuilding its memory.
    virtual std::optional<lease_info> find_lease(const std::string& id) const = 0;
    /// Every live lease.
    virtual std::vector<lease_info> leases() const = 0;
    /// One template, counts summed over backends; std::nullopt when unknown.
    virtual std::optional<template_status> status(const std::string& template_name) const = 0;
    /// Every configured template.
    virtual std::vector<template_status> templates() const = 0;

    /// Whether leases can be served: `ready` when every configured template has a ready version
    /// on some backend that is up (and, with none configured, some backend is up); `problems`
    /// names what falls short of all backends serving everything (degraded while still ready).
    struct readiness {
        bool ready = false;
        std::vector<std::string> problems;
    };
    virtual readiness ready() const = 0;
};

}  // namespace pglease
