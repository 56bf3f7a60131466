#include "support/pg_test_cluster.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include "pg/connection.hpp"
#include "support/run_async.hpp"

namespace pglease::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct pg_test_cluster::state {
    // The cluster's server process is bound to this loop, so it lives as long as the cluster.
    boost::asio::io_context io;
    fs::path root;
    std::unique_ptr<embedded_cluster> cluster;
};

std::unique_ptr<pg_test_cluster::state>& pg_test_cluster::instance() {
    static std::unique_ptr<state> current;
    return current;
}

void pg_test_cluster::SetUp() {
    auto s = std::make_unique<state>();
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string pattern = (base / "pglease-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp " + pattern + " failed");
    }
    s->root = pattern;
    // The unprivileged server account must be able to enter the directory when we are root.
    fs::permissions(s->root, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    embedded_cluster_options options;
    options.data_dir = s->root / "cluster";
    options.max_connections = 200;
    s->cluster = run_async(s->io, [&] { return embedded_cluster::start(options); });
    instance() = std::move(s);
}

void pg_test_cluster::TearDown() {
    auto& s = instance();
    if (!s) {
        return;
    }
    run_async(s->io, [&] { return s->cluster->stop(); });
    s->cluster.reset();
    std::error_code ignored;
    fs::remove_all(s->root, ignored);
    s.reset();
}

embedded_cluster& pg_test_cluster::cluster() {
    if (!instance()) {
        throw std::logic_error("the shared PostgreSQL cluster is not running");
    }
    return *instance()->cluster;
}

std::string pg_test_cluster::scratch_dir() {
    auto dir = instance()->root / "scratch";
    fs::create_directories(dir);
    return dir.string();
}

std::string pg_test_cluster::fresh_database() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("t_") + info->test_suite_name() + "_" + info->name();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
        return std::isalnum(c) ? static_cast<char>(std::tolower(c)) : '_';
    });
    name = name.substr(0, 63);
    run_async([&]() -> boost::asio::awaitable<void> {
        auto admin = co_await pg::connection::connect(cluster().admin_conninfo(), 10s);
        const std::string quoted = admin.quote_identifier(name);
        co_await admin.exec("DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)");
        co_await admin.exec("CREATE DATABASE " + quoted);
    });
    return cluster().admin_conninfo(name);
}

}  // namespace pglease::test
