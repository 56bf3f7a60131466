#pragma once

// Builds the versions of configured templates: watches each source (migrations, command,
// database) for a new fingerprint, builds it into a template database, and retries failures
// with backoff. It records progress on the template's entry; a built version is handed on.

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/backend_endpoint.hpp"
#include "broker/backend_life.hpp"
#include "metrics/broker_metrics.hpp"

namespace pglease {

namespace pg {
class connection_pool;
}
class template_set;
class template_pool;
struct template_entry;

class source_builds {
  public:
    struct hooks {
        /// A version was built: it becomes the one leases of its template get.
        std::function<void(template_entry&, std::unique_ptr<template_pool>)> built;
        /// A build failed while the template has no version: its waiting workers hear why.
        std::function<void(template_entry&)> failed;
        /// Queues a database for dropping (a failed build's).
        std::function<void(std::string)> drop_database;
        /// Something changed that the refill rule must see.
        std::function<void()> changed;
    };

    /// What each version holds is recorded under `state_dir`, for resets in place.
    source_builds(boost::asio::any_io_executor executor, const backend_endpoint& endpoint,
                  std::string prefix, std::filesystem::path working_dir,
                  std::filesystem::path state_dir, template_set& templates,
                  pg::connection_pool& operations, broker_metrics& metrics, backend_life& life,
                  hooks wiring);

    /// Reads what every configured source asks for now (before the catalog is read), marking
    /// a source that cannot be read as failed.
    boost::asio::awaitable<void> read_sources();
    /// Checks every configured source and starts building each version that is new.
    boost::asio::awaitable<void> watch();

  private:
    boost::asio::awaitable<std::optional<std::string>> source_fingerprint(template_entry& entry);
    boost::asio::awaitable<void> build_version(template_entry& entry, std::string fingerprint);

    boost::asio::any_io_executor executor_;
    const backend_endpoint& endpoint_;
    std::string prefix_;
    std::filesystem::path working_dir_;
    std::filesystem::path state_dir_;
    template_set& templates_;
    pg::connection_pool& operations_;
    broker_metrics& metrics_;
    backend_life& life_;
    hooks hooks_;
};

}  // namespace pglease
