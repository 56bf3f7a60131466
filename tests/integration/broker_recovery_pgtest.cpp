// The catalog is the state: restarts, crashes, strays, new versions and a second broker.
#include <filesystem>

#include <gtest/gtest.h>

#include "broker/broker_error.hpp"
#include "pg/connection.hpp"
#include "pg/conninfo.hpp"
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

// A function, so a throwing initializer cannot escape before main.
const std::map<std::string, std::string>& schema() {
    static const std::map<std::string, std::string> files{
        {"0001_items.sql", "CREATE TABLE items (id serial PRIMARY KEY, name text);"},
    };
    return files;
}

acquire_request quick(std::chrono::seconds ttl = 600s) {
    acquire_request request;
    request.wait = 30s;
    request.ttl = ttl;
    request.owner = "recovery-test";
    return request;
}

bool pool_settled(broker_harness& h, const std::string& name, std::size_t idle) {
    auto status = h.engine().status(name);
    return status && status->state == template_state::ready && status->pool.idle == idle &&
           status->pool.creating == 0 && status->pool.dropping == 0 && status->pool.resetting == 0;
}

bool exists(broker_harness& h, const std::string& database) {
    return !h.admin_value("SELECT 1 FROM pg_database WHERE datname = $1", database).empty();
}

TEST(broker_recovery, a_crashed_broker_is_replaced_without_losing_a_lease_or_leaking_a_database) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 2;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
    auto kept_alive = h.run([&] { return h.engine().acquire("app", quick()); });
    auto released_later = h.run([&] { return h.engine().acquire("app", quick()); });
    auto expiring = h.run([&] { return h.engine().acquire("app", quick(2s)); });
    const auto leased_oid =
        h.admin_value("SELECT oid FROM pg_database WHERE datname = $1", kept_alive.database);
    h.crash();

    // What a crash mid-operation leaves: a clone whose comment was never written, a drop that
    // was interrupted (an invalid database), files of a CREATE DATABASE that never committed.
    const std::string no_comment = h.config().prefix + "app_stray_no_comment";
    const std::string invalid = h.config().prefix + "app_stray_invalid";
    h.admin_value("CREATE DATABASE " + no_comment);
    h.admin_value("CREATE DATABASE " + invalid);
    h.admin_value("UPDATE pg_database SET datconnlimit = -2 WHERE datname = $1", invalid);
    h.admin_value("DROP DATABASE IF EXISTS other_application");
    h.admin_value("CREATE DATABASE other_application");
    const fs::path orphan = pg_test_cluster::cluster().pgdata() / "base" / "999999";
    fs::create_directories(orphan);
    give_to_user(orphan, running_as_root() ? find_os_user("postgres") : std::nullopt);
    h.run_for(2500ms);  // the short lease expires while no broker runs

    h.start();
    ASSERT_TRUE(h.wait_until([&] { return !exists(h, no_comment) && !exists(h, invalid); }));
    EXPECT_FALSE(fs::exists(orphan)) << "orphaned files of an interrupted clone were left";
    EXPECT_TRUE(exists(h, "other_application")) << "a database without our prefix was touched";

    // The live leases are honoured with their old ids; the expired one was recycled.
    ASSERT_TRUE(h.engine().find_lease(kept_alive.id));
    EXPECT_EQ(h.engine().find_lease(kept_alive.id)->database, kept_alive.database);
    EXPECT_EQ(h.admin_value("SELECT oid FROM pg_database WHERE datname = $1", kept_alive.database),
              leased_oid)
        << "a leased clone was recycled";
    EXPECT_FALSE(h.engine().find_lease(expiring.id));
    EXPECT_TRUE(h.wait_until([&] { return !exists(h, expiring.database); }));
    auto renewed = h.run([&] { return h.engine().renew(kept_alive.id, 60s); });
    EXPECT_EQ(renewed.database, kept_alive.database);
    h.run(
        [&] { return h.engine().release(released_later.id, release_mode::recycle, std::nullopt); });
    EXPECT_TRUE(h.wait_until([&] { return !exists(h, released_later.database); }));

    // New leases never get a database that is still leased.
    for (int i = 0; i < 4; ++i) {
        auto fresh = h.run([&] { return h.engine().acquire("app", quick()); });
        EXPECT_NE(fresh.database, kept_alive.database);
        h.run([&] { return h.engine().release(fresh.id, release_mode::recycle, std::nullopt); });
    }
    h.run([&] { return h.engine().release(kept_alive.id, release_mode::recycle, std::nullopt); });
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
    EXPECT_EQ(h.managed_databases().size(), 3u) << "something leaked";
    h.admin_value("DROP DATABASE other_application");
}

TEST(broker_recovery, a_session_left_on_an_idle_clone_ends_before_a_worker_gets_the_clone) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.max_total = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    h.crash();
    // What a broker killed between a reuse's commit and the end of its sessions leaves: a clone
    // the catalog calls idle, with a session of the lease that is over still on it.
    const std::string idle = h.admin_value(
        "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE '%\\_tpl'",
        h.config().prefix + "app\\_%");
    ASSERT_FALSE(idle.empty());
    auto left = h.run([&] {
        return pg::connection::connect(pg::with_database(h.endpoint().admin_conninfo, idle), 10s);
    });
    h.start();
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_EQ(lease.database, idle);
    EXPECT_EQ(h.admin_value("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", idle), "0")
        << "a worker got a clone with another's session still on it";
    EXPECT_THROW(h.run([&] { return left.exec("SELECT 1"); }), pg::connection_error);
    h.run([&] { return h.engine().release(lease.id, release_mode::recycle, std::nullopt); });
}

TEST(broker_recovery, a_half_built_template_and_unconfigured_versions_are_dropped) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 1;
    h.add_migrations_template("retired", schema()).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(
        h.wait_until([&] { return pool_settled(h, "app", 1) && pool_settled(h, "retired", 1); }));
    h.crash();
    const std::string half_built = h.config().prefix + "app_halfbuilt_tpl";
    h.admin_value("CREATE DATABASE " + half_built);
    h.admin_value(
        "COMMENT ON DATABASE " + half_built +
        " IS 'pglease:v1 "
        "{\"kind\":\"template\",\"template\":\"app\",\"fingerprint\":\"00000000\",\"phase\":"
        "\"building\"}'");
    h.config().templates.erase("retired");
    h.start();
    ASSERT_TRUE(h.wait_until([&] {
        for (const auto& name : h.managed_databases()) {
            if (name.find("retired") != std::string::npos ||
                name.find("halfbuilt") != std::string::npos) {
                return false;
            }
        }
        return true;
    }));
    EXPECT_TRUE(pool_settled(h, "app", 1));
    EXPECT_EQ(h.managed_databases().size(), 2u);
}

TEST(broker_recovery, a_new_fingerprint_serves_new_leases_and_the_old_version_drains) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 2;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
    const std::string old_fingerprint = h.engine().status("app")->fingerprint;
    auto old_lease = h.run([&] { return h.engine().acquire("app", quick()); });
    const auto old_template = h.admin_value(
        "SELECT datname FROM pg_database WHERE datname LIKE '%\\_tpl' AND datname LIKE $1",
        "%" + old_fingerprint.substr(0, 8) + "%");
    ASSERT_FALSE(old_template.empty());

    h.write_migration("app", "0002_more.sql", "CREATE TABLE more_items (id int);");
    ASSERT_TRUE(h.wait_until([&] {
        auto status = h.engine().status("app");
        return status->fingerprint != old_fingerprint && pool_settled(h, "app", 2);
    }));
    auto new_lease = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_NE(new_lease.fingerprint, old_fingerprint);
    EXPECT_EQ(old_lease.fingerprint, old_fingerprint);
    auto tables = h.run([&]() -> asio::awaitable<std::string> {
        auto conn = co_await pg::connection::connect(new_lease.dsn(), 10s);
        auto rows = co_await conn.exec("SELECT count(*) FROM more_items");
        co_return std::string(rows.value(0, 0));
    });
    EXPECT_EQ(tables, "0");
    // The old version keeps its leased clone and its template until that lease ends.
    EXPECT_TRUE(exists(h, old_lease.database));
    EXPECT_TRUE(exists(h, old_template));
    h.run([&] { return h.engine().release(old_lease.id, release_mode::reuse, std::nullopt); });
    EXPECT_TRUE(
        h.wait_until([&] { return !exists(h, old_lease.database) && !exists(h, old_template); }));
    for (const auto& name : h.managed_databases()) {
        EXPECT_EQ(name.find(old_fingerprint.substr(0, 8)), std::string::npos)
            << name << " of the old version is left";
    }
}

TEST(broker_recovery, a_version_that_comes_back_while_it_drains_keeps_its_leased_clones) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 2;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
    const std::string version_a = h.engine().status("app")->fingerprint;
    auto held = h.run([&] { return h.engine().acquire("app", quick()); });
    const auto held_oid =
        h.admin_value("SELECT oid FROM pg_database WHERE datname = $1", held.database);

    h.write_migration("app", "0002_b.sql", "CREATE TABLE b_only (id int);");
    ASSERT_TRUE(h.wait_until([&] {
        return h.engine().status("app")->fingerprint != version_a && pool_settled(h, "app", 2);
    }));
    h.write_migration("app", "0002_b.sql", "");  // back to version A
    ASSERT_TRUE(h.wait_until([&] {
        return h.engine().status("app")->fingerprint == version_a && pool_settled(h, "app", 2);
    }));
    // The clone leased under A is untouched, and new clones of A never take its name.
    EXPECT_EQ(h.admin_value("SELECT oid FROM pg_database WHERE datname = $1", held.database),
              held_oid);
    for (int i = 0; i < 4; ++i) {
        auto fresh = h.run([&] { return h.engine().acquire("app", quick()); });
        EXPECT_NE(fresh.database, held.database);
        EXPECT_EQ(fresh.fingerprint, version_a);
        h.run([&] { return h.engine().release(fresh.id, release_mode::recycle, std::nullopt); });
    }
    h.run([&] { return h.engine().release(held.id, release_mode::reuse, std::nullopt); });
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
    h.run_for(500ms);
    EXPECT_TRUE(pool_settled(h, "app", 2));
    EXPECT_EQ(h.managed_databases().size(), 3u) << "a version's databases leaked or vanished";
    EXPECT_TRUE(h.engine().ready().ready);
}

TEST(broker_recovery, a_broker_whose_lock_session_died_grants_nothing_even_before_it_notices) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 2;
    h.config().watch_interval = 1h;  // the broker does not look at its lock session by itself
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
    const auto before = h.managed_databases();
    // What a partition or a killed session does: the lock goes, and a standby could take over.
    const std::string holder =
        "FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND "
        "((classid::bigint << 32) | objid::bigint) = hashtextextended('pglease:' || $1, 0)";
    ASSERT_EQ(h.admin_value("SELECT count(pg_terminate_backend(pid)) " + holder, h.config().prefix),
              "1");
    ASSERT_TRUE(h.wait_until(
        [&] { return h.admin_value("SELECT count(*) " + holder, h.config().prefix) == "0"; }));

    std::string code;
    std::string message;
    try {
        h.run([&] { return h.engine().acquire("app", quick()); });
    } catch (const broker_error& e) {
        code = e.code();
        message = e.what();
    }
    EXPECT_EQ(code, "backend_down") << "a lease was granted without the backend's lock";
    EXPECT_NE(message.find("no longer holds the backend's lock"), std::string::npos) << message;
    EXPECT_EQ(h.admin_value("SELECT count(*) FROM pg_database WHERE datname LIKE $1 AND "
                            "shobj_description(oid, 'pg_database') LIKE '%\"lease\"%'",
                            h.config().prefix + "%"),
              "0")
        << "a lease was recorded in the catalog";
    EXPECT_EQ(h.managed_databases(), before) << "the fenced broker dropped a database";

    // It notices at once, takes the lock again and serves.
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_FALSE(lease.database.empty());
}

TEST(broker_recovery, a_second_broker_waits_as_a_standby_and_takes_over) {
    broker_harness first;
    first.add_migrations_template("app", schema()).pool.min_idle = 1;
    first.start();
    ASSERT_TRUE(first.wait_until([&] { return pool_settled(first, "app", 1); }));
    auto lease = first.run([&] { return first.engine().acquire("app", quick()); });

    broker_harness second;
    second.config() = first.config();  // the same prefix: the same backend lock
    second.endpoint() = first.endpoint();
    auto standby = std::make_unique<broker>(second.io().get_executor(),
                                            std::vector{second.endpoint()}, second.config());
    bool started = false;
    boost::asio::co_spawn(second.io(), standby->start(),
                          [&](const std::exception_ptr& e) { started = !e; });
    second.io().run_for(1500ms);
    EXPECT_FALSE(started) << "two brokers administered one backend at once";

    first.stop();
    for (int i = 0; i < 200 && !started; ++i) {
        second.io().restart();
        second.io().run_for(50ms);
    }
    ASSERT_TRUE(started) << "the standby did not take over";
    EXPECT_TRUE(standby->find_lease(lease.id)) << "the standby lost a lease on takeover";
    second.io().restart();
    test::run_async(second.io(), [&] { return standby->stop(); });
}

}  // namespace
}  // namespace pglease
