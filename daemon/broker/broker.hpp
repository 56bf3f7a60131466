#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/lease_types.hpp"

namespace pglease {

class backend_shard;
class broker_metrics;
struct shard_config;

/// The C++ API of pglease: leases of clones of configured templates, over every backend.
/// Lives on one executor; every call runs on it.
class broker {
  public:
    broker(boost::asio::any_io_executor executor, std::vector<backend_endpoint> backends,
           const shard_config& config);
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;
    ~broker();

    /// Takes every backend (waiting as a standby where another broker holds one), adopts its
    /// catalog, and starts building and filling pools. Throws when a backend is unreachable.
    boost::asio::awaitable<void> start();
    /// Stops background work; leases stay in the catalog for the next start.
    boost::asio::awaitable<void> stop();

    /// Leases a clone of `template_name`; throws broker_error (unknown_template, pool_exhausted,
    /// backend_down, template_failed, template_building).
    boost::asio::awaitable<lease_info> acquire(std::string template_name, acquire_request request);
    /// Extends the lease `id` by `ttl` (default: the template's), capped by its max_ttl.
    boost::asio::awaitable<lease_info> renew(std::string id,
                                             std::optional<std::chrono::seconds> ttl);
    /// Ends the lease `id`.
    boost::asio::awaitable<void> release(std::string id, release_mode mode,
                                         std::optional<std::chrono::seconds> keep_for);
    /// Makes the database of lease `id` fresh again; the lease goes on. Throws broker_error
    /// (unknown_lease, sessions_busy, conflict, backend_down).
    boost::asio::awaitable<reset_answer> reset(std::string id);

    /// Ensures client-initialized template `name` has a version with `fingerprint` (on the
    /// first backend): ready, ready within `wait`, or the caller's to build.
    boost::asio::awaitable<client_template_outcome> ensure_client_template(
        std::string name, std::string fingerprint, std::chrono::seconds wait,
        std::chrono::seconds build_ttl);
    /// Makes a client's build the template's ready version.
    boost::asio::awaitable<template_status> finalize_build(std::string name,
                                                           std::string fingerprint,
                                                           std::string build_id);
    /// Gives up a client's build.
    boost::asio::awaitable<void> abort_build(std::string name, std::string fingerprint,
                                             std::string build_id);

    /// Why the API cannot serve yet (a backend's catalog is not read, or this broker is a
    /// standby), or std::nullopt once every backend's catalog has been read.
    std::optional<std::string> not_serving() const;
    /// The lease `id`, if live; throws broker_error (not_ready, backend_down) while a backend
    /// that may hold it is rebuilding its memory.
    std::optional<lease_info> find_lease(const std::string& id) const;
    /// Every live lease.
    std::vector<lease_info> leases() const;
    /// One template, counts summed over backends; std::nullopt when unknown.
    std::optional<template_status> status(const std::string& template_name) const;
    /// Every configured template.
    std::vector<template_status> templates() const;
    /// Whether leases can be served: `ready` when every configured template has a ready version
    /// on some backend that is up (and, with none configured, some backend is up); `problems`
    /// names what falls short of all backends serving everything (degraded while still ready).
    struct readiness {
        bool ready = false;
        std::vector<std::string> problems;
    };
    readiness ready() const;
    /// Every backend's state.
    std::vector<backend_status> backends() const;
    /// Background tasks still running over every backend.
    int pending_tasks() const;
    /// The event metrics (leases, clones, builds) of every template.
    const broker_metrics& metrics() const noexcept { return *metrics_; }

  private:
    backend_shard* shard_holding(const std::string& id) const;

    std::unique_ptr<broker_metrics> metrics_;
    std::vector<std::string> template_names_;
    std::vector<std::unique_ptr<backend_shard>> shards_;
};

}  // namespace pglease
