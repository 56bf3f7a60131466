#include "broker/broker.hpp"

#include <algorithm>
#include <set>

#include "broker/backend_shard.hpp"
#include "broker/broker_error.hpp"
#include "leases/lease_id.hpp"
#include "metrics/broker_metrics.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

namespace asio = boost::asio;

broker::broker(asio::any_io_executor executor, std::vector<backend_endpoint> backends,
               const shard_config& config)
    : metrics_(std::make_unique<broker_metrics>()) {
    for (const auto& [name, settings] : config.templates) {
        template_names_.push_back(name);
    }
    for (auto& endpoint : backends) {
        shards_.push_back(
            std::make_unique<backend_shard>(executor, std::move(endpoint), config, *metrics_));
    }
}

broker::~broker() = default;

asio::awaitable<void> broker::start() {
    for (auto& shard : shards_) {
        try {
            co_await shard->start();
        } catch (const pg::pg_error& e) {
            throw std::runtime_error("backends." + shard->endpoint().name +
                                     ": cannot use the backend: " + e.what());
        }
    }
}

asio::awaitable<void> broker::stop() {
    for (auto& shard : shards_) {
        co_await shard->stop();
    }
}

asio::awaitable<lease_info> broker::acquire(std::string template_name, acquire_request request) {
    // The backend with idle clones at hand, else the one with the fewest databases.
    backend_shard* chosen = nullptr;
    for (auto& shard : shards_) {
        if (!shard->up()) {
            continue;
        }
        if (chosen == nullptr ||
            shard->idle_clones(template_name) > chosen->idle_clones(template_name) ||
            (chosen->idle_clones(template_name) == 0 &&
             shard->managed_databases() < chosen->managed_databases())) {
            chosen = shard.get();
        }
    }
    if (chosen == nullptr) {
        chosen = shards_.front().get();
    }
    co_return co_await chosen->acquire(template_name, request);
}

std::optional<std::string> broker::not_serving() const {
    for (const auto& shard : shards_) {
        if (!shard->catalog_read()) {
            return "backend " + shard->endpoint().name +
                   (shard->standby() ? " is held by another pglease broker; this one is a standby"
                                     : ": its catalog is being read");
        }
    }
    return std::nullopt;
}

backend_shard* broker::shard_holding(const std::string& id) const {
    if (!is_lease_id(id)) {
        return nullptr;
    }
    const std::string key = lease_key(id);
    for (const auto& shard : shards_) {
        if (shard->find_lease(key)) {
            return shard.get();
        }
    }
    // A backend whose memory is being rebuilt from its catalog may hold the lease: "no such
    // lease" would make its holder believe it lost a database it still has.
    for (const auto& shard : shards_) {
        if (!shard->up()) {
            throw broker_error(shard->catalog_read() ? "backend_down" : "not_ready",
                               "backend " + shard->endpoint().name +
                                   " is reconnecting; the lease may be held there",
                               std::chrono::seconds(1));
        }
    }
    return nullptr;
}

asio::awaitable<lease_info> broker::renew(std::string id, std::optional<std::chrono::seconds> ttl) {
    backend_shard* shard = shard_holding(id);
    if (shard == nullptr) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    auto info = co_await shard->renew(lease_key(id), ttl);
    info.identify(id);
    co_return info;
}

asio::awaitable<void> broker::release(std::string id, release_mode mode,
                                      std::optional<std::chrono::seconds> keep_for) {
    backend_shard* shard = shard_holding(id);
    if (shard == nullptr) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    co_await shard->release(lease_key(id), mode, keep_for);
}

asio::awaitable<reset_answer> broker::reset(std::string id) {
    backend_shard* shard = shard_holding(id);
    if (shard == nullptr) {
        throw broker_error("unknown_lease", "no such lease (it expired or was released)");
    }
    reset_answer answer = co_await shard->reset(lease_key(id));
    answer.lease.identify(id);
    co_return answer;
}

asio::awaitable<client_template_outcome> broker::ensure_client_template(
    std::string name, std::string fingerprint, std::chrono::seconds wait,
    std::chrono::seconds build_ttl) {
    // Client-initialized templates live on the first backend: one builder, one place.
    co_return co_await shards_.front()->ensure_client_template(
        std::move(name), std::move(fingerprint), wait, build_ttl);
}

asio::awaitable<template_status> broker::finalize_build(std::string name, std::string fingerprint,
                                                        std::string build_id) {
    co_return co_await shards_.front()->finalize_build(std::move(name), std::move(fingerprint),
                                                       std::move(build_id));
}

asio::awaitable<void> broker::abort_build(std::string name, std::string fingerprint,
                                          std::string build_id) {
    co_await shards_.front()->abort_build(std::move(name), std::move(fingerprint),
                                          std::move(build_id));
}

std::optional<lease_info> broker::find_lease(const std::string& id) const {
    backend_shard* shard = shard_holding(id);
    if (shard == nullptr) {
        return std::nullopt;
    }
    auto info = shard->find_lease(lease_key(id));
    if (info) {
        info->identify(id);
    }
    return info;
}

std::vector<lease_info> broker::leases() const {
    std::vector<lease_info> all;
    for (const auto& shard : shards_) {
        auto some = shard->leases();
        all.insert(all.end(), some.begin(), some.end());
    }
    return all;
}

std::optional<template_status> broker::status(const std::string& template_name) const {
    std::optional<template_status> merged;
    for (const auto& shard : shards_) {
        auto one = shard->status(template_name);
        if (!one) {
            continue;
        }
        if (!merged) {
            merged = std::move(one);
            continue;
        }
        merged->pool.idle += one->pool.idle;
        merged->pool.leased += one->pool.leased;
        merged->pool.creating += one->pool.creating;
        merged->pool.dropping += one->pool.dropping;
        merged->pool.kept += one->pool.kept;
        merged->pool.resetting += one->pool.resetting;
        merged->pool.waiters += one->pool.waiters;
        for (auto& version : one->versions) {
            if (std::find(merged->versions.begin(), merged->versions.end(), version) ==
                merged->versions.end()) {
                merged->versions.push_back(std::move(version));
            }
        }
        if (merged->state != template_state::ready && one->state == template_state::ready) {
            merged->state = template_state::ready;
            merged->fingerprint = one->fingerprint;
        }
        if (merged->error.empty()) {
            merged->error = one->error;
        }
    }
    return merged;
}

std::vector<template_status> broker::templates() const {
    std::set<std::string> names(template_names_.begin(), template_names_.end());
    for (const auto& shard : shards_) {
        for (auto& name : shard->template_names()) {
            names.insert(std::move(name));
        }
    }
    std::vector<template_status> all;
    for (const auto& name : names) {
        if (auto one = status(name)) {
            all.push_back(std::move(*one));
        }
    }
    return all;
}

std::vector<backend_status> broker::backends() const {
    std::vector<backend_status> all;
    all.reserve(shards_.size());
    for (const auto& shard : shards_) {
        all.push_back(shard->backend_state());
    }
    return all;
}

int broker::pending_tasks() const {
    int pending = 0;
    for (const auto& shard : shards_) {
        pending += shard->pending_tasks();
    }
    return pending;
}

broker::readiness broker::ready() const {
    readiness answer;
    bool any_up = false;
    for (const auto& shard : shards_) {
        if (shard->up()) {
            any_up = true;
        } else {
            answer.problems.push_back("backend " + shard->endpoint().name + " is unreachable");
        }
    }
    answer.ready = any_up;
    for (const auto& name : template_names_) {
        bool served = false;
        for (const auto& shard : shards_) {
            auto one = shard->up() ? shard->status(name) : std::nullopt;
            if (one && !one->fingerprint.empty()) {
                served = true;
            } else if (shard->up()) {
                answer.problems.push_back("template " + name + " has no ready version on backend " +
                                          shard->endpoint().name);
            }
        }
        answer.ready = answer.ready && served;
    }
    return answer;
}

}  // namespace pglease
