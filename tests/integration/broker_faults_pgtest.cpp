// Faults under way: the backend restarting while workers wait or right after leases were granted,
// bursts that must stay within the caps, and files left by interrupted clones.
#include <filesystem>
#include <fstream>
#include <signal.h>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include "metrics/state_metrics.hpp"
#include "pg/connection.hpp"
#include "pg/pg_error.hpp"
#include "process/os_user.hpp"
#include "support/broker_harness.hpp"
#include "support/pg_test_cluster.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::broker_harness;
using test::pg_test_cluster;

const std::map<std::string, std::string>& schema() {
    static const std::map<std::string, std::string> files{
        {"0001_items.sql", "CREATE TABLE items (id serial PRIMARY KEY, name text);"},
    };
    return files;
}

acquire_request quick(std::chrono::seconds wait = 30s) {
    acquire_request request;
    request.wait = wait;
    request.owner = "faults-test";
    return request;
}

bool pool_settled(broker_harness& h, const std::string& name, std::size_t idle) {
    auto status = h.engine().status(name);
    return status && status->state == template_state::ready && status->pool.idle == idle &&
           status->pool.creating == 0 && status->pool.dropping == 0 && status->pool.resetting == 0;
}

bool backend_up(broker_harness& h) {
    return h.engine().backends().front().up;
}

// The server process holding the broker's advisory lock: its session.
std::string lock_session(broker_harness& h) {
    try {
        return h.admin_value(
            "SELECT pid::text FROM pg_locks WHERE locktype = 'advisory' AND granted");
    } catch (const pg::pg_error&) {
        return {};  // still recovering from the crash
    }
}

// Kills one server process with SIGKILL: PostgreSQL then ends every session and restarts,
// as after any backend crash. Returns once the broker has reconnected and rebuilt its memory.
void crash_backend(broker_harness& h) {
    // The broker's own lock session: a server process that is alive for certain (a session of
    // the test's own may already be exiting, and its end is then no crash).
    const std::string locked_by = lock_session(h);
    ASSERT_FALSE(locked_by.empty());
    ASSERT_EQ(::kill(std::stoi(locked_by), SIGKILL), 0);
    for (const auto until = std::chrono::steady_clock::now() + 30s;
         std::chrono::steady_clock::now() < until;) {
        try {
            h.admin_value("SELECT 1");
            break;
        } catch (const pg::pg_error&) {
            std::this_thread::sleep_for(50ms);
        }
    }
    // A new lock session means the broker saw the crash and reconnected; up again means its
    // memory was rebuilt from the catalog.
    ASSERT_TRUE(h.wait_until(
        [&] {
            const std::string now = lock_session(h);
            return !now.empty() && now != locked_by && backend_up(h);
        },
        30s))
        << "the broker did not reconnect after the crash";
}

// Clones of the harness's templates whose catalog comment carries a lease.
std::size_t leases_in_catalog(broker_harness& h) {
    return std::stoul(h.admin_value(
        "SELECT count(*) FROM pg_database d JOIN pg_shdescription sd ON sd.objoid = d.oid "
        "AND sd.classoid = 'pg_database'::regclass "
        "WHERE starts_with(d.datname, $1) AND sd.description LIKE '%\"lease\":%'",
        h.config().prefix));
}

TEST(broker_faults, workers_waiting_through_a_backend_restart_are_served_and_nothing_leaks) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 0;
    settings.pool.max_total = 3;
    h.start();
    ASSERT_TRUE(
        h.wait_until([&] { return h.engine().status("app")->state == template_state::ready; }));
    std::vector<lease_info> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(h.run([&] { return h.engine().acquire("app", quick()); }));
    }

    // Three more workers wait: the pool is at max_total.
    std::vector<lease_info> served;
    std::vector<std::string> refused;
    for (int i = 0; i < 3; ++i) {
        asio::co_spawn(
            h.io(),
            [&]() -> asio::awaitable<void> {
                try {
                    served.push_back(co_await h.engine().acquire("app", quick(60s)));
                } catch (const std::exception& e) {
                    refused.emplace_back(e.what());
                }
            },
            asio::detached);
    }
    ASSERT_TRUE(h.wait_until([&] { return h.engine().status("app")->pool.waiters == 3; }));

    crash_backend(h);
    EXPECT_EQ(h.engine().leases().size(), 3u) << "the leases granted before the restart";

    // Releases make room; the waiters, still within their wait, get the new clones.
    for (const auto& lease : held) {
        h.run([&] { return h.engine().release(lease.id, release_mode::recycle, std::nullopt); });
    }
    ASSERT_TRUE(h.wait_until([&] { return served.size() + refused.size() == 3; }, 60s));
    EXPECT_TRUE(refused.empty()) << refused.front();
    ASSERT_EQ(served.size(), 3u);
    const auto status = *h.engine().status("app");
    EXPECT_EQ(status.pool.leased, 3u);
    EXPECT_EQ(h.engine().leases().size(), 3u) << "a clone leased in memory holds no lease";
    EXPECT_EQ(leases_in_catalog(h), 3u);
    for (const auto& lease : served) {
        EXPECT_TRUE(h.engine().find_lease(lease.id)) << lease.database;
        h.run([&] { return h.engine().release(lease.id, release_mode::recycle, std::nullopt); });
    }
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 0); }));
    EXPECT_EQ(h.managed_databases().size(), 1u) << "only the template is left";
}

TEST(broker_faults, every_lease_answered_before_a_backend_crash_is_in_the_catalog_after_it) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 12;
    settings.pool.max_total = 12;
    h.endpoint().max_parallel_clones = 4;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 12); }));
    // A burst of grants, and the crash right after the last answer: no write may be lost, or
    // a leased clone would come back idle for the next worker.
    std::vector<lease_info> granted;
    for (int i = 0; i < 12; ++i) {
        granted.push_back(h.run([&] { return h.engine().acquire("app", quick()); }));
    }
    crash_backend(h);
    EXPECT_EQ(leases_in_catalog(h), 12u);
    for (const auto& lease : granted) {
        auto found = h.engine().find_lease(lease.id);
        ASSERT_TRUE(found) << lease.database << " lost its lease in the crash";
        EXPECT_EQ(found->database, lease.database);
    }
}

TEST(broker_faults, a_recycle_burst_never_holds_more_databases_than_max_total) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 2;
    settings.pool.max_total = 4;
    h.endpoint().max_parallel_clones = 4;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));

    // Eight workers recycle as fast as they can; a sampler counts the clones on the server.
    int done = 0;
    std::size_t most = 0;
    int samples = 0;
    std::vector<std::string> problems;
    h.run([&]() -> asio::awaitable<void> {
        auto admin =
            co_await pg::connection::connect(pg_test_cluster::cluster().admin_conninfo(), 10s);
        constexpr int workers = 8;
        for (int w = 0; w < workers; ++w) {
            asio::co_spawn(
                h.io(),
                [&]() -> asio::awaitable<void> {
                    try {
                        for (int i = 0; i < 10; ++i) {
                            auto lease = co_await h.engine().acquire("app", quick(60s));
                            co_await h.engine().release(lease.id, release_mode::recycle,
                                                        std::nullopt);
                        }
                    } catch (const std::exception& e) {
                        problems.emplace_back(e.what());
                    }
                    ++done;
                },
                asio::detached);
        }
        asio::steady_timer pause(co_await asio::this_coro::executor);
        while (done < workers) {
            auto count = co_await admin.query(
                "SELECT count(*) FROM pg_database WHERE starts_with(datname, $1) AND datname NOT "
                "LIKE '%\\_tpl'",
                h.config().prefix);
            most = std::max<std::size_t>(most, std::stoul(std::string(count.value(0, 0))));
            ++samples;
            pause.expires_after(2ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
    });
    EXPECT_TRUE(problems.empty()) << problems.front();
    EXPECT_GT(samples, 20);
    EXPECT_LE(most, 4u) << "clone databases on the server over max_total 4";
    EXPECT_GE(most, 3u) << "the sampler saw no burst at all";
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
}

// A directory such as an interrupted CREATE DATABASE leaves: files, and no database owns it.
fs::path make_orphan_directory(const std::string& oid) {
    const fs::path dir = pg_test_cluster::cluster().pgdata() / "base" / oid;
    fs::create_directories(dir);
    for (int i = 0; i < 3; ++i) {
        std::ofstream(dir / std::to_string(16384 + i)) << std::string(1000, 'x');
    }
    const auto owner = running_as_root() ? find_os_user("postgres") : std::nullopt;
    give_to_user(dir, owner);
    for (const auto& file : fs::directory_iterator(dir)) {
        give_to_user(file.path(), owner);
    }
    return dir;
}

std::string scrape(const broker& engine) {
    std::string text;
    for (const auto& family : state_metrics(engine).Collect()) {
        for (const auto& metric : family.metric) {
            text += family.name;
            for (const auto& label : metric.label) {
                text += " " + label.name + "=" + label.value;
            }
            text += " " + std::to_string(static_cast<long long>(metric.gauge.value)) + "\n";
        }
    }
    return text;
}

TEST(broker_faults, files_no_database_owns_are_reported_on_a_backend_pglease_does_not_own) {
    const fs::path orphan = make_orphan_directory("3999999991");
    broker_harness h;
    h.endpoint().pgdata.reset();  // as for an external backend: its data directory is not ours
    h.add_migrations_template("app", schema()).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    EXPECT_TRUE(fs::exists(orphan)) << "files on a backend pglease does not own were removed";
    const auto orphans = h.engine().backends().front().orphans;
    ASSERT_TRUE(orphans) << "a superuser admin may read the data directory";
    EXPECT_EQ(orphans->directories, 1u);
    EXPECT_EQ(orphans->files, 3u);
    EXPECT_EQ(orphans->bytes, 3000u);
    const std::string metrics = scrape(h.engine());
    EXPECT_NE(metrics.find("pglease_backend_orphan_directories backend=embedded 1\n"),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("pglease_backend_orphan_bytes backend=embedded 3000\n"),
              std::string::npos)
        << metrics;
    fs::remove_all(orphan);
}

TEST(broker_faults, an_admin_that_may_not_read_the_data_directory_reports_nothing_not_zero) {
    const fs::path orphan = make_orphan_directory("3999999992");
    broker_harness h;
    h.endpoint().pgdata.reset();
    h.admin_value("DROP ROLE IF EXISTS plain_admin");
    h.admin_value("CREATE ROLE plain_admin LOGIN CREATEDB CREATEROLE");
    h.endpoint().admin_conninfo += " user=plain_admin";
    h.add_migrations_template("app", schema()).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    EXPECT_FALSE(h.engine().backends().front().orphans);
    EXPECT_EQ(scrape(h.engine()).find("pglease_backend_orphan"), std::string::npos);
    h.stop();
    for (const auto& name : h.managed_databases()) {
        h.admin_value("ALTER DATABASE \"" + name + "\" IS_TEMPLATE false");
        h.admin_value("DROP DATABASE \"" + name + "\" WITH (FORCE)");
    }
    h.admin_value("DROP OWNED BY plain_admin");
    h.admin_value("DROP ROLE plain_admin");
    fs::remove_all(orphan);
}

}  // namespace
}  // namespace pglease
