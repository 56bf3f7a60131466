#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "broker/backend_shard.hpp"
#include "broker/broker.hpp"
#include "config/settings.hpp"
#include "pg/connection.hpp"

namespace pglease::test {

/// A broker on the shared test cluster, on a loop of its own that runs only while a test awaits
/// something on it.
class broker_harness {
  public:
    broker_harness();
    ~broker_harness();

    /// A template from a migrations directory made of `files` (name -> SQL) in a scratch dir.
    template_settings& add_migrations_template(const std::string& name,
                                               const std::map<std::string, std::string>& files);
    /// Rewrites (or with empty SQL, removes) one migration file of `template_name`.
    void write_migration(const std::string& template_name, const std::string& file,
                         const std::string& sql);
    /// A scratch directory for this harness.
    const std::filesystem::path& dir() const noexcept { return dir_; }

    /// Starts a broker with the templates added so far.
    void start();
    /// Stops and destroys the broker.
    void stop();
    /// Abandons the broker as a crash would: its memory is never used again and its sessions
    /// are terminated by the server, as when its process dies.
    void crash();

    /// Runs a coroutine on the broker's loop and returns its result.
    template <typename Make>
    auto run(Make&& make, std::chrono::seconds limit = std::chrono::seconds(120));

    /// Runs the loop until `done()` holds; false when `limit` passed first.
    bool wait_until(const std::function<bool()>& done,
                    std::chrono::milliseconds limit = std::chrono::seconds(60));
    /// Lets the loop run for `how_long`.
    void run_for(std::chrono::milliseconds how_long);

    broker& engine() { return *engine_; }
    shard_config& config() { return config_; }
    backend_endpoint& endpoint() { return endpoint_; }
    boost::asio::io_context& io() { return *io_; }

    /// One value from the admin's connection to the postgres database ("" when no row).
    std::string admin_value(const std::string& sql, const std::string& param = {});
    /// Names of databases with the configured prefix.
    std::vector<std::string> managed_databases();

  private:
    std::unique_ptr<boost::asio::io_context> io_;
    std::filesystem::path dir_;
    shard_config config_;
    backend_endpoint endpoint_;
    std::unique_ptr<broker> engine_;
};

}  // namespace pglease::test

#include "support/run_async.hpp"

template <typename Make>
auto pglease::test::broker_harness::run(Make&& make, std::chrono::seconds limit) {
    return run_async(*io_, std::forward<Make>(make), limit);
}
