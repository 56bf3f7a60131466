#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/lease_engine.hpp"
#include "broker/lease_types.hpp"

namespace pglease {

class backend_shard;
class broker_metrics;
struct shard_config;

/// The C++ API of pglease: leases of clones of configured templates, over every backend.
/// Lives on one executor; every call runs on it.
class broker final : public lease_engine {
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

    // The lease_engine, over every backend.
    boost::asio::awaitable<lease_info> acquire(std::string template_name,
                                               acquire_request request) override;
    boost::asio::awaitable<lease_info> renew(std::string id,
                                             std::optional<std::chrono::seconds> ttl) override;
    boost::asio::awaitable<void> release(std::string id, release_mode mode,
                                         std::optional<std::chrono::seconds> keep_for) override;
    boost::asio::awaitable<reset_answer> reset(std::string id) override;
    boost::asio::awaitable<client_template_outcome> ensure_client_template(
        std::string name, std::string fingerprint, std::chrono::seconds wait,
        std::chrono::seconds build_ttl) override;
    boost::asio::awaitable<template_status> finalize_build(std::string name,
                                                           std::string fingerprint,
                                                           std::string build_id) override;
    boost::asio::awaitable<void> abort_build(std::string name, std::string fingerprint,
                                             std::string build_id) override;
    std::optional<std::string> not_serving() const override;
    std::optional<lease_info> find_lease(const std::string& id) const override;
    std::vector<lease_info> leases() const override;
    std::optional<template_status> status(const std::string& template_name) const override;
    std::vector<template_status> templates() const override;
    readiness ready() const override;
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
