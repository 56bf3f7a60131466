#include "support/broker_harness.hpp"

#include <fstream>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "support/pg_test_cluster.hpp"

namespace pglease::test {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using abandoned_broker = std::pair<std::unique_ptr<asio::io_context>, std::unique_ptr<broker>>;

// Crashed brokers stay here, reachable and never touched again, as a dead process's memory.
std::vector<abandoned_broker>& graveyard() {
    static auto* kept = new std::vector<abandoned_broker>();
    return *kept;
}

}  // namespace

broker_harness::broker_harness() : io_(std::make_unique<asio::io_context>()) {
    static int count = 0;
    dir_ = fs::path(pg_test_cluster::scratch_dir()) /
           ("broker-" + std::to_string(::getpid()) + "-" + std::to_string(++count));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Tests in one process share the cluster: each harness keeps to databases of its own.
    config_.prefix = "pgl" + std::to_string(count) + "_";
    config_.watch_interval = 200ms;
    config_.working_dir = dir_;
    config_.state_dir = dir_ / "versions";
    endpoint_ = embedded_endpoint(pg_test_cluster::cluster(), 2, 200);
}

broker_harness::~broker_harness() {
    if (engine_) {
        stop();
    }
    for (const auto& name : managed_databases()) {
        admin_value("ALTER DATABASE \"" + name + "\" IS_TEMPLATE false");
        admin_value("DROP DATABASE \"" + name + "\" WITH (FORCE)");
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
}

template_settings& broker_harness::add_migrations_template(
    const std::string& name, const std::map<std::string, std::string>& files) {
    template_settings settings;
    settings.name = name;
    settings.kind = source_kind::migrations;
    settings.migrations = dir_ / ("migrations-" + name);
    fs::create_directories(settings.migrations);
    settings.pool.min_idle = 2;
    settings.pool.max_total = 8;
    auto& stored = config_.templates[name] = settings;
    for (const auto& [file, sql] : files) {
        write_migration(name, file, sql);
    }
    return stored;
}

void broker_harness::write_migration(const std::string& template_name, const std::string& file,
                                     const std::string& sql) {
    const fs::path path = config_.templates.at(template_name).migrations / file;
    if (sql.empty()) {
        fs::remove(path);
        return;
    }
    std::ofstream(path, std::ios::trunc) << sql;
}

void broker_harness::start() {
    engine_ = std::make_unique<broker>(io_->get_executor(), std::vector{endpoint_}, config_);
    run([&] { return engine_->start(); });
}

void broker_harness::stop() {
    run([&] { return engine_->stop(); });
    engine_.reset();
}

void broker_harness::crash() {
    graveyard().emplace_back(std::move(io_), std::move(engine_));
    io_ = std::make_unique<asio::io_context>();
    admin_value(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'pglease' AND pid <> pg_backend_pid()");
}

bool broker_harness::wait_until(const std::function<bool()>& done,
                                std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        run_for(20ms);
    }
    return true;
}

void broker_harness::run_for(std::chrono::milliseconds how_long) {
    run([&]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
        co_await timer.async_wait(asio::use_awaitable);
    });
}

std::string broker_harness::admin_value(const std::string& sql, const std::string& param) {
    return run_async([&]() -> asio::awaitable<std::string> {
        auto conn =
            co_await pg::connection::connect(pg_test_cluster::cluster().admin_conninfo(), 10s);
        pg::result rows;
        if (param.empty()) {
            rows = co_await conn.exec(sql);
        } else {
            rows = co_await conn.query(sql, param);
        }
        co_return rows.rows() > 0 && rows.columns() > 0 ? std::string(rows.value(0, 0))
                                                        : std::string();
    });
}

std::vector<std::string> broker_harness::managed_databases() {
    return run_async([&]() -> asio::awaitable<std::vector<std::string>> {
        auto conn =
            co_await pg::connection::connect(pg_test_cluster::cluster().admin_conninfo(), 10s);
        auto rows = co_await conn.query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
            config_.prefix);
        std::vector<std::string> names;
        for (std::size_t i = 0; i < rows.rows(); ++i) {
            names.emplace_back(rows.value(i, 0));
        }
        co_return names;
    });
}

}  // namespace pglease::test
