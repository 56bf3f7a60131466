#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

#include "embedded/embedded_cluster.hpp"
#include "embedded/tcp_port.hpp"
#include "pg/connection.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"
#include "process/os_user.hpp"
#include "support/pg_test_cluster.hpp"
#include "support/process_table.hpp"
#include "support/run_async.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::pg_test_cluster;
using test::run_async;

fs::path scratch(const std::string& name) {
    fs::path dir = fs::path(pg_test_cluster::scratch_dir()) / name;
    fs::remove_all(dir);
    return dir;
}

// Clusters are started on the test's own loop, which outlives them.
std::unique_ptr<embedded_cluster> start_at(asio::io_context& io, const fs::path& dir,
                                           std::optional<std::uint16_t> port = std::nullopt) {
    embedded_cluster_options options;
    options.data_dir = dir;
    options.port = port;
    options.max_connections = 50;
    return run_async(io, [&] { return embedded_cluster::start(options); });
}

std::string query_one(const std::string& conninfo, const std::string& sql) {
    return run_async([&]() -> asio::awaitable<std::string> {
        auto c = co_await pg::connection::connect(conninfo, 10s);
        auto r = co_await c.exec(sql);
        co_return std::string(r.value(0, 0));
    });
}

void execute(const std::string& conninfo, const std::string& sql) {
    run_async([&]() -> asio::awaitable<void> {
        auto c = co_await pg::connection::connect(conninfo, 10s);
        co_await c.exec(sql);
    });
}

TEST(embedded_cluster, runs_with_settings_for_throwaway_data) {
    auto& cluster = pg_test_cluster::cluster();
    const auto admin = cluster.admin_conninfo();
    EXPECT_EQ(query_one(admin, "SHOW fsync"), "off");
    EXPECT_EQ(query_one(admin, "SHOW synchronous_commit"), "off");
    EXPECT_EQ(query_one(admin, "SHOW full_page_writes"), "off");
    EXPECT_EQ(query_one(admin, "SHOW max_connections"), "200");
    EXPECT_EQ(query_one(admin, "SHOW listen_addresses"), "127.0.0.1");
    EXPECT_EQ(query_one(admin, "SHOW server_encoding"), "UTF8");
    EXPECT_EQ(query_one(admin, "SHOW server_version_num").substr(0, 2), "15");
    EXPECT_EQ(query_one(admin, "SHOW data_directory"), cluster.pgdata().string());
    EXPECT_EQ(query_one(admin, "SHOW shared_preload_libraries"), "plpgsql")
        << "PL/pgSQL is loaded once by the postmaster, not by every test's first trigger";
    EXPECT_TRUE(fs::exists(cluster.socket_dir() / (".s.PGSQL." + std::to_string(cluster.port()))));
    if (running_as_root()) {
        EXPECT_EQ(test::process_uid(cluster.postmaster_pid()),
                  static_cast<int>(find_os_user("postgres")->uid))
            << "as root, the cluster must run as the unprivileged postgres account";
    }
}

TEST(embedded_cluster, a_second_start_on_a_running_data_dir_fails_clearly_and_harms_nothing) {
    auto& cluster = pg_test_cluster::cluster();
    asio::io_context io;
    try {
        start_at(io, cluster.data_dir());
        ADD_FAILURE() << "a second cluster started on a data directory in use";
    } catch (const std::runtime_error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("is in use by another pgleased (pid " + std::to_string(::getpid())),
                  std::string::npos)
            << message;
    }
    EXPECT_EQ(query_one(cluster.admin_conninfo(), "SELECT 'unharmed'"), "unharmed");
}

TEST(embedded_cluster, stop_leaves_no_process_and_a_restart_keeps_the_data) {
    asio::io_context io;
    const fs::path dir = scratch("restart");
    auto first = start_at(io, dir);
    const int postmaster = first->postmaster_pid();
    execute(first->admin_conninfo(), "CREATE DATABASE kept_across_restart");
    run_async(io, [&] { return first->stop(); });
    EXPECT_FALSE(test::process_alive(postmaster));
    EXPECT_TRUE(test::processes_mentioning(first->pgdata().string()).empty());
    first.reset();

    const auto initdb_mark = fs::last_write_time(dir / "pgdata" / "PG_VERSION");
    auto second = start_at(io, dir);
    EXPECT_EQ(fs::last_write_time(dir / "pgdata" / "PG_VERSION"), initdb_mark)
        << "the existing data directory was initialized again";
    EXPECT_EQ(query_one(second->admin_conninfo(),
                        "SELECT count(*) FROM pg_database WHERE datname = 'kept_across_restart'"),
              "1");
    run_async(io, [&] { return second->stop(); });
    EXPECT_TRUE(test::processes_mentioning(second->pgdata().string()).empty());
}

TEST(embedded_cluster, a_cluster_whose_owner_vanished_is_taken_over_by_the_next_start) {
    asio::io_context io;
    const fs::path dir = scratch("vanished");
    auto first = start_at(io, dir);
    execute(first->admin_conninfo(), "CREATE DATABASE survives_a_crash");
    // Dropped without stop(), as when the daemon dies: the postmaster is left to shut down alone.
    first.reset();
    auto second = start_at(io, dir);
    EXPECT_EQ(query_one(second->admin_conninfo(),
                        "SELECT count(*) FROM pg_database WHERE datname = 'survives_a_crash'"),
              "1");
    run_async(io, [&] { return second->stop(); });
    EXPECT_TRUE(test::processes_mentioning(second->pgdata().string()).empty());
}

TEST(embedded_cluster, a_given_port_is_used_and_listens_on_loopback) {
    asio::io_context io;
    const auto port = pick_free_port();
    auto cluster = start_at(io, scratch("port"), port);
    EXPECT_EQ(cluster->port(), port);
    // Reaching the server over TCP: it answers, and refuses the superuser without a password.
    try {
        run_async([&] {
            return pg::connection::connect(
                pg::make_conninfo({{"host", "127.0.0.1"},
                                   {"port", std::to_string(port)},
                                   {"user", embedded_cluster::superuser}}),
                10s);
        });
        ADD_FAILURE() << "the superuser logged in over TCP without a password";
    } catch (const pg::connection_error& e) {
        EXPECT_EQ(std::string(e.what()).find("Connection refused"), std::string::npos) << e.what();
    }
    run_async(io, [&] { return cluster->stop(); });
}

TEST(embedded_cluster, a_directory_that_is_not_a_cluster_is_refused_untouched) {
    const fs::path dir = scratch("foreign");
    fs::create_directories(dir / "pgdata");
    std::ofstream(dir / "pgdata" / "precious.txt") << "not postgres";
    asio::io_context io;
    try {
        start_at(io, dir);
        ADD_FAILURE() << "started on a foreign directory";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("not a PostgreSQL data directory"), std::string::npos)
            << e.what();
    }
    EXPECT_TRUE(fs::exists(dir / "pgdata" / "precious.txt"));
}

TEST(embedded_cluster, a_missing_unprivileged_account_is_a_clear_error_as_root) {
    if (!running_as_root()) {
        GTEST_SKIP() << "the account is only used when pgleased runs as root";
    }
    embedded_cluster_options options;
    options.data_dir = scratch("no-user");
    options.run_as = "pglease-no-such-user";
    asio::io_context io;
    try {
        run_async(io, [&] { return embedded_cluster::start(options); });
        ADD_FAILURE() << "started as root without an unprivileged account";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("refuses to run as root"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("--run-as"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace pglease
