#pragma once

// Client-initialized templates: a test suite asks for a version by the fingerprint of its own
// migrations; exactly one caller builds it (holding a build lease), the others wait for the
// outcome. Owns the callers waiting for a build; records the build on the template's entry.

#include <chrono>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_life.hpp"
#include "broker/lease_types.hpp"
#include "config/settings.hpp"
#include "leases/deadline_queue.hpp"
#include "metrics/broker_metrics.hpp"

namespace pglease {

namespace pg {
class connection_pool;
}
class template_set;
class template_pool;
struct template_entry;
struct client_build;

class client_builds {
  public:
    struct hooks {
        /// A version was finalized: it becomes the one leases of its template get.
        std::function<void(template_entry&, std::unique_ptr<template_pool>)> built;
        /// Queues a database for dropping (an aborted or expired build's).
        std::function<void(std::string)> drop_database;
        /// The template's state and pool, as the API shows it.
        std::function<template_status(const template_entry&)> status;
    };

    /// What each version holds is recorded under `state_dir`, for resets in place.
    client_builds(boost::asio::any_io_executor executor, const backend_endpoint& endpoint,
                  std::string prefix, std::filesystem::path state_dir, template_set& templates,
                  deadline_queue& deadlines, pg::connection_pool& operations,
                  broker_metrics& metrics, backend_life& life, pool_settings default_pool,
                  lease_settings default_lease, hooks wiring);

    /// Makes sure template `name` has a version with `fingerprint`: ready now, ready within
    /// `wait` (another caller builds it), or this caller's to build.
    boost::asio::awaitable<client_template_outcome> ensure(std::string name,
                                                           std::string fingerprint,
                                                           std::chrono::seconds wait,
                                                           std::chrono::seconds build_ttl);
    /// Makes the built version ready; its pool fills and leases get it.
    boost::asio::awaitable<template_status> finalize(std::string name, std::string fingerprint,
                                                     std::string build_id);
    /// Gives up a build: its database is dropped and the next caller builds.
    void abort(const std::string& name, const std::string& fingerprint,
               const std::string& build_id);
    /// A build lease's deadline fell due: the next caller builds.
    void build_expired(const std::string& name);

    /// The settings of client-initialized templates (the configuration's defaults).
    template_settings settings_for(const std::string& name) const;
    /// Wakes every caller waiting for a build (the backend was lost, or the broker stops).
    void wake_all();

  private:
    client_build& find_build(template_entry& entry, const std::string& fingerprint,
                             const std::string& build_id);
    void end_build(template_entry& entry, bool drop_database);
    void wake(const std::string& name);

    boost::asio::any_io_executor executor_;
    const backend_endpoint& endpoint_;
    std::string prefix_;
    std::filesystem::path state_dir_;
    template_set& templates_;
    deadline_queue& deadlines_;
    pg::connection_pool& operations_;
    broker_metrics& metrics_;
    backend_life& life_;
    pool_settings default_pool_;
    lease_settings default_lease_;
    hooks hooks_;
    std::map<std::string, std::list<boost::asio::steady_timer*>> waiting_;
};

/// The internal fingerprint of a version a client named `given`.
std::string client_fingerprint(const std::string& given);

}  // namespace pglease
