#include <fstream>
#include <set>

#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include "broker/broker_error.hpp"
#include "leases/lease_id.hpp"
#include "pg/connection_pool.hpp"
#include "pg/pg_error.hpp"
#include "support/broker_harness.hpp"
#include "support/pg_test_cluster.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::broker_harness;
using test::pg_test_cluster;

// A function, so a throwing initializer cannot escape before main.
const std::map<std::string, std::string>& schema() {
    static const std::map<std::string, std::string> files{
        {"0001_accounts.sql",
         "CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);\n"
         "CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES "
         "accounts(id));\n"},
        {"0002_trigger.sql",
         "CREATE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email := "
         "lower(NEW.email); RETURN NEW; END $$;\n"
         "CREATE TRIGGER accounts_lower BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION "
         "lower_email();\n"},
    };
    return files;
}

acquire_request quick(std::chrono::seconds wait = 30s) {
    acquire_request request;
    request.wait = wait;
    request.owner = "test";
    return request;
}

// Runs `sql` as the worker, over the lease's own DSN, and returns the first value.
std::string as_worker(broker_harness& h, const lease_info& lease, const std::string& sql) {
    return h.run([&]() -> asio::awaitable<std::string> {
        auto conn = co_await pg::connection::connect(lease.dsn(), 10s);
        auto rows = co_await conn.exec(sql);
        co_return rows.rows() > 0 ? std::string(rows.value(0, 0)) : std::string();
    });
}

bool pool_settled(broker_harness& h, const std::string& name, std::size_t idle) {
    auto status = h.engine().status(name);
    return status && status->state == template_state::ready && status->pool.idle == idle &&
           status->pool.creating == 0 && status->pool.dropping == 0 && status->pool.resetting == 0;
}

TEST(broker, a_migrations_template_builds_and_its_pool_fills_to_min_idle) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 3;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 3); }));
    auto status = *h.engine().status("app");
    EXPECT_EQ(status.fingerprint.size(), 64u);
    EXPECT_EQ(status.pool.leased, 0u);
    EXPECT_EQ(h.managed_databases().size(), 4u) << "3 clones and the template";

    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_EQ(lease.user, "pglease_worker");
    EXPECT_TRUE(is_lease_id(lease.id));
    // The worker owns everything: it may write, create and alter.
    EXPECT_EQ(as_worker(h, lease, "INSERT INTO accounts (email) VALUES ('A@B.C') RETURNING email"),
              "a@b.c");
    EXPECT_EQ(as_worker(h, lease,
                        "CREATE TABLE mine (x int); ALTER TABLE accounts ADD COLUMN y "
                        "int; TRUNCATE orders, accounts; SELECT 'ok'"),
              "ok");
    EXPECT_EQ(as_worker(h, lease, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"), "1");
    // The generated password is stored as a SCRAM secret with few iterations (cheap logins,
    // above), and only the right password logs in.
    EXPECT_EQ(h.admin_value("SELECT split_part(rolpassword, ':', 1) FROM pg_authid "
                            "WHERE rolname = 'pglease_worker'"),
              "SCRAM-SHA-256$16");
    lease_info wrong = lease;
    wrong.password = "not-" + lease.password;
    EXPECT_THROW(as_worker(h, wrong, "SELECT 1"), pg::pg_error);
    // The template itself is closed to connections and marked as a template.
    EXPECT_EQ(h.admin_value("SELECT datallowconn::text || datistemplate::text FROM pg_database "
                            "WHERE datname LIKE '%\\_tpl'"),
              "falsetrue");
    h.run([&] { return h.engine().release(lease.id, release_mode::recycle, std::nullopt); });
    EXPECT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 3); }));
}

TEST(broker, a_database_template_is_cloned_as_is_with_the_role_that_owns_it) {
    broker_harness h;
    h.admin_value("DROP DATABASE IF EXISTS source_app");
    h.admin_value("DROP ROLE IF EXISTS source_owner");
    h.admin_value("CREATE ROLE source_owner LOGIN PASSWORD 'owner-secret'");
    h.admin_value("CREATE DATABASE source_app OWNER source_owner");
    h.run([&]() -> asio::awaitable<void> {
        auto conn = co_await pg::connection::connect(
            pg_test_cluster::cluster().admin_conninfo("source_app"), 10s);
        co_await conn.exec(
            "SET ROLE source_owner; CREATE TABLE things (id serial PRIMARY KEY, name text); "
            "INSERT INTO things (name) VALUES ('from the source')");
    });
    template_settings settings;
    settings.name = "external";
    settings.kind = source_kind::database;
    settings.database = "source_app";
    settings.lease_role = "source_owner";
    settings.lease_password = "owner-secret";
    settings.pool.min_idle = 1;
    h.config().templates["external"] = settings;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "external", 1); }))
        << h.engine().status("external")->error;
    auto lease = h.run([&] { return h.engine().acquire("external", quick()); });
    EXPECT_EQ(lease.user, "source_owner");
    EXPECT_EQ(as_worker(h, lease, "SELECT name FROM things"), "from the source");
    EXPECT_EQ(as_worker(h, lease, "INSERT INTO things (name) VALUES ('mine') RETURNING id"), "2");
}

TEST(broker, a_command_template_runs_with_database_url_and_pg_variables) {
    broker_harness h;
    const auto script = h.dir() / "migrate.sh";
    std::ofstream(script)
        << "psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -c 'CREATE TABLE "
           "from_command (who text DEFAULT current_user)'\n"
           "psql -v ON_ERROR_STOP=1 -c \"INSERT INTO from_command DEFAULT VALUES\"\n";
    template_settings settings;
    settings.name = "cmd";
    settings.kind = source_kind::command;
    settings.command = "sh migrate.sh";
    settings.watch = {script};
    settings.pool.min_idle = 1;
    h.config().templates["cmd"] = settings;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "cmd", 1); }))
        << h.engine().status("cmd")->error;
    auto lease = h.run([&] { return h.engine().acquire("cmd", quick()); });
    EXPECT_EQ(as_worker(h, lease, "SELECT who FROM from_command"), "pglease_worker");
}

TEST(broker, a_broken_migration_fails_naming_the_file_and_recovers_once_fixed) {
    broker_harness h;
    auto files = schema();
    files["0003_broken.sql"] = "CREATE TABLE broken (x no_such_type);";
    h.add_migrations_template("app", files).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(
        h.wait_until([&] { return h.engine().status("app")->state == template_state::failed; }));
    const auto status = *h.engine().status("app");
    EXPECT_NE(status.error.find("0003_broken.sql"), std::string::npos) << status.error;
    EXPECT_NE(status.error.find("no_such_type"), std::string::npos) << status.error;
    EXPECT_TRUE(status.fingerprint.empty());
    try {
        h.run([&] { return h.engine().acquire("app", quick(5s)); });
        ADD_FAILURE() << "a lease of a failed template was granted";
    } catch (const broker_error& e) {
        EXPECT_EQ(e.code(), "template_failed");
        EXPECT_NE(std::string(e.what()).find("0003_broken.sql"), std::string::npos);
    }
    // Never half a template: the failed build's database is gone.
    EXPECT_TRUE(h.wait_until([&] { return h.managed_databases().empty(); }));

    h.write_migration("app", "0003_broken.sql", "CREATE TABLE fixed (x int);");
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    EXPECT_TRUE(h.engine().status("app")->error.empty());
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_EQ(as_worker(h, lease, "SELECT count(*) FROM fixed"), "0");
}

TEST(broker, sixteen_workers_and_five_hundred_leases_never_share_a_database) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 2;
    settings.pool.max_total = 8;
    h.endpoint().max_parallel_clones = 4;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));

    constexpr int workers = 16;
    constexpr int total_leases = 500;
    int started = 0;
    int completed = 0;
    std::set<std::string> held;
    std::vector<std::string> problems;
    h.run(
        [&]() -> asio::awaitable<void> {
            // One statement at a time per connection: the workers share a small pool.
            pg::connection_pool admins(pg_test_cluster::cluster().admin_conninfo(), 4, 30s);
            std::vector<std::function<asio::awaitable<void>()>> tasks;
            tasks.reserve(workers);
            for (int w = 0; w < workers; ++w) {
                tasks.emplace_back([&, w]() -> asio::awaitable<void> {
                    while (started < total_leases) {
                        const int n = started++;
                        auto lease = co_await h.engine().acquire("app", quick(60s));
                        if (!held.insert(lease.database).second) {
                            problems.push_back(lease.database + " leased twice at once");
                        }
                        // It exists, is valid, and the catalog names this very lease.
                        auto admin = co_await admins.acquire();
                        auto row = co_await admin->query(
                            "SELECT d.datconnlimit, sd.description FROM pg_database d JOIN "
                            "pg_shdescription sd ON sd.objoid = d.oid WHERE d.datname = $1",
                            lease.database);
                        if (row.rows() != 1 || row.value(0, 0) == "-2" ||
                            row.value(0, 1).find(lease_key(lease.id)) == std::string_view::npos) {
                            problems.push_back(lease.database + " missing or not recorded");
                        }
                        // Leased counts every clone held or being handed over (one per worker
                        // at most), never fewer than the workers hold.
                        const auto status = *h.engine().status("app");
                        if (status.pool.leased < held.size() ||
                            status.pool.leased > held.size() + workers ||
                            status.pool.idle + status.pool.leased + status.pool.creating +
                                    status.pool.kept >
                                static_cast<std::size_t>(status.pool.max_total)) {
                            problems.push_back("counts do not add up: leased " +
                                               std::to_string(status.pool.leased) + " held " +
                                               std::to_string(held.size()));
                        }
                        held.erase(lease.database);
                        co_await h.engine().release(
                            lease.id, n % 3 == 0 ? release_mode::reuse : release_mode::recycle,
                            std::nullopt);
                        ++completed;
                    }
                    (void)w;
                });
            }
            co_await test::when_all(std::move(tasks));
        },
        300s);
    EXPECT_EQ(completed, total_leases);
    EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 2); }));
    const auto status = *h.engine().status("app");
    EXPECT_EQ(status.pool.leased, 0u);
    EXPECT_EQ(status.pool.kept, 0u);
    EXPECT_EQ(h.managed_databases().size(), 3u) << "only min_idle clones and the template remain";
}

TEST(broker, an_exhausted_pool_makes_workers_wait_in_order_and_then_says_why) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.max_total = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    auto first = h.run([&] { return h.engine().acquire("app", quick()); });
    const auto started = std::chrono::steady_clock::now();
    try {
        h.run([&] { return h.engine().acquire("app", quick(1s)); });
        ADD_FAILURE() << "a second lease came out of a pool of one";
    } catch (const broker_error& e) {
        EXPECT_EQ(e.code(), "pool_exhausted");
        EXPECT_NE(std::string(e.what()).find("max_total"), std::string::npos) << e.what();
        EXPECT_TRUE(e.retry_after());
    }
    EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);

    // Two waiters; a release serves the first of them, the next release the second.
    std::vector<std::string> order;
    h.run([&]() -> asio::awaitable<void> {
        std::vector<std::function<asio::awaitable<void>()>> tasks;
        for (const std::string who : {"second", "third"}) {
            tasks.emplace_back([&, who]() -> asio::awaitable<void> {
                auto lease = co_await h.engine().acquire("app", quick(30s));
                order.push_back(who);
                asio::steady_timer pause(co_await asio::this_coro::executor, 100ms);
                co_await pause.async_wait(asio::use_awaitable);
                co_await h.engine().release(lease.id, release_mode::reuse, std::nullopt);
            });
        }
        tasks.emplace_back([&]() -> asio::awaitable<void> {
            asio::steady_timer pause(co_await asio::this_coro::executor, 300ms);
            co_await pause.async_wait(asio::use_awaitable);
            co_await h.engine().release(first.id, release_mode::reuse, std::nullopt);
        });
        co_await test::when_all(std::move(tasks));
    });
    EXPECT_EQ(order, (std::vector<std::string>{"second", "third"}));
}

TEST(broker, the_database_cap_holds_over_every_template) {
    broker_harness h;
    h.endpoint().max_databases = 4;
    h.add_migrations_template("app", schema()).pool.min_idle = 10;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 3); }));
    h.run_for(500ms);
    EXPECT_EQ(h.managed_databases().size(), 4u) << "3 clones and the template, never more";
    std::vector<lease_info> leases;
    leases.reserve(3);
    for (int i = 0; i < 3; ++i) {
        leases.push_back(h.run([&] { return h.engine().acquire("app", quick()); }));
    }
    try {
        h.run([&] { return h.engine().acquire("app", quick(1s)); });
        ADD_FAILURE() << "a lease beyond max_databases was granted";
    } catch (const broker_error& e) {
        EXPECT_EQ(e.code(), "pool_exhausted");
        EXPECT_NE(std::string(e.what()).find("max_databases"), std::string::npos) << e.what();
    }
}

TEST(broker, an_expired_lease_is_recycled_within_a_second_while_a_session_is_connected) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.recycle = "reclone";  // its database goes: visible from outside
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    acquire_request request = quick();
    request.ttl = 2s;
    auto lease = h.run([&] { return h.engine().acquire("app", request); });
    // A worker that holds a session and then vanishes without releasing.
    auto session = h.run([&] { return pg::connection::connect(lease.dsn(), 10s); });
    ASSERT_TRUE(h.wait_until(
        [&] {
            return h.admin_value("SELECT 1 FROM pg_database WHERE datname = $1", lease.database)
                .empty();
        },
        10s));
    const auto gone_at = std::chrono::system_clock::now();
    EXPECT_LT(gone_at - lease.expires_at, 1s) << "recycled late";
    EXPECT_GE(gone_at, lease.expires_at) << "recycled before it expired";
    EXPECT_FALSE(h.engine().find_lease(lease.id));
    EXPECT_THROW(h.run([&] { return session.exec("SELECT 1"); }), pg::connection_error);
    try {
        h.run([&] { return h.engine().renew(lease.id, 60s); });
        ADD_FAILURE() << "an expired lease was renewed";
    } catch (const broker_error& e) {
        EXPECT_EQ(e.code(), "unknown_lease");
    }
    EXPECT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
}

TEST(broker, renew_moves_expiry_within_max_ttl) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.lease.max_ttl = 3s;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    acquire_request request = quick();
    request.ttl = 2s;
    auto lease = h.run([&] { return h.engine().acquire("app", request); });
    h.run_for(1500ms);
    auto renewed = h.run([&] { return h.engine().renew(lease.id, 3600s); });
    EXPECT_LE(renewed.expires_at - std::chrono::system_clock::now(), 3s) << "max_ttl not applied";
    h.run_for(1500ms);
    EXPECT_TRUE(h.engine().find_lease(lease.id)) << "the renewed lease expired at its first TTL";
    EXPECT_FALSE(
        h.admin_value("SELECT 1 FROM pg_database WHERE datname = $1", lease.database).empty());
}

TEST(broker, reuse_returns_the_same_clone_to_idle_without_a_drop) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.max_total = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    auto first = h.run([&] { return h.engine().acquire("app", quick()); });
    const auto oid =
        h.admin_value("SELECT oid FROM pg_database WHERE datname = $1", first.database);
    auto session = h.run([&] { return pg::connection::connect(first.dsn(), 10s); });
    h.run([&] { return h.engine().release(first.id, release_mode::reuse, std::nullopt); });
    // Offered again only once the session left on it is gone.
    ASSERT_TRUE(h.wait_until([&] { return h.engine().status("app")->pool.idle == 1; }));
    EXPECT_EQ(
        h.admin_value("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", first.database),
        "0")
        << "a reused clone was offered with its last lease's session still on it";
    EXPECT_EQ(h.engine().status("app")->pool.dropping, 0u);
    EXPECT_THROW(h.run([&] { return session.exec("SELECT 1"); }), pg::connection_error)
        << "a session left on a reused clone was not terminated";
    auto second = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_EQ(second.database, first.database);
    EXPECT_EQ(h.admin_value("SELECT oid FROM pg_database WHERE datname = $1", second.database),
              oid);
    EXPECT_NE(second.id, first.id);
}

TEST(broker, reuse_cycles_clone_nothing_and_the_surplus_goes_after_a_grace) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.max_total = 4;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    // Two workers hold a clone each; the pool warms back to one idle clone behind them.
    auto a = h.run([&] { return h.engine().acquire("app", quick()); });
    auto b = h.run([&] { return h.engine().acquire("app", quick()); });
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    const auto surplus_from = std::chrono::steady_clock::now();
    h.run([&] { return h.engine().release(a.id, release_mode::reuse, std::nullopt); });
    h.run([&] { return h.engine().release(b.id, release_mode::reuse, std::nullopt); });
    const auto databases = h.managed_databases();
    ASSERT_EQ(databases.size(), 4u) << "3 idle clones and the template";
    // Workers that lease and give back with reuse find those clones: nothing is cloned or
    // dropped, whatever the idle count does between their tests.
    for (int i = 0; i < 20; ++i) {
        auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
        h.run([&] { return h.engine().release(lease.id, release_mode::reuse, std::nullopt); });
    }
    EXPECT_EQ(h.managed_databases(), databases);
    EXPECT_EQ(h.engine().status("app")->pool.creating, 0u);
    EXPECT_EQ(h.engine().status("app")->pool.dropping, 0u);
    // A surplus that lasted the grace period (10 s) is dropped down to min_idle.
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }, 30s));
    EXPECT_GE(std::chrono::steady_clock::now() - surplus_from, 9s);
    EXPECT_EQ(h.managed_databases().size(), 2u);
}

TEST(broker, keep_retains_the_clone_until_its_cap_then_drops_it) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.recycle = "reclone";  // at the end of its keep, the clone goes
    settings.lease.max_keep = 2s;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }));
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    as_worker(h, lease, "INSERT INTO accounts (email) VALUES ('evidence@example.com')");
    h.run([&] { return h.engine().release(lease.id, release_mode::keep, 3600s); });
    EXPECT_EQ(h.engine().status("app")->pool.kept, 1u);
    h.run_for(1s);
    EXPECT_FALSE(
        h.admin_value("SELECT 1 FROM pg_database WHERE datname = $1", lease.database).empty())
        << "a kept clone was dropped before its time";
    const auto kept_since = std::chrono::steady_clock::now();
    ASSERT_TRUE(h.wait_until([&] {
        return h.admin_value("SELECT 1 FROM pg_database WHERE datname = $1", lease.database)
            .empty();
    }));
    EXPECT_LT(std::chrono::steady_clock::now() - kept_since, 3s) << "kept past max_keep";
    EXPECT_EQ(h.engine().status("app")->pool.kept, 0u);
}

TEST(broker, unknown_templates_and_leases_are_refused_by_name) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 0;
    h.start();
    try {
        h.run([&] { return h.engine().acquire("nope", quick()); });
        ADD_FAILURE();
    } catch (const broker_error& e) {
        EXPECT_EQ(e.code(), "unknown_template");
        EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
    }
    for (const std::string& id : std::vector<std::string>{"", "not-an-id", std::string(32, 'a')}) {
        try {
            h.run([&] { return h.engine().release(id, release_mode::recycle, std::nullopt); });
            ADD_FAILURE() << id;
        } catch (const broker_error& e) {
            EXPECT_EQ(e.code(), "unknown_lease");
        }
    }
}

}  // namespace
}  // namespace pglease
