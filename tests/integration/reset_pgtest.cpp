// Recycling in place: a clone comes back fresh under its own name and oid, after a release or
// for its holder (a sticky lease), and whatever cannot be proven exact is cloned again.
#include <gtest/gtest.h>

#include "broker/broker_error.hpp"
#include "pg/connection.hpp"
#include "pg/pg_error.hpp"
#include "support/broker_harness.hpp"
#include "support/pg_test_cluster.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::broker_harness;

// Seed rows, foreign keys, a trigger that writes an audit row, an identity and a sequence.
const std::map<std::string, std::string>& schema() {
    static const std::map<std::string, std::string> files{
        {"0001.sql",
         "CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text "
         "NOT NULL UNIQUE);\n"
         "CREATE TABLE orders (id serial PRIMARY KEY, account_id bigint NOT NULL REFERENCES "
         "accounts(id), total numeric NOT NULL);\n"
         "CREATE TABLE audit (id serial PRIMARY KEY, what text NOT NULL);\n"
         "CREATE TABLE empty_notes (id serial PRIMARY KEY, body text);\n"
         "CREATE SEQUENCE invoice_numbers START 1000;\n"
         "CREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "
         "audit (what) VALUES ('order ' || NEW.id); RETURN NEW; END $$;\n"
         "CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION "
         "audit_order();\n"
         "INSERT INTO accounts (email) SELECT 'user' || g || '@example.com' FROM "
         "generate_series(1, 50) g;\n"
         "INSERT INTO orders (account_id, total) SELECT 1 + g % 50, g FROM generate_series(1, "
         "200) g;\n"
         "SELECT nextval('invoice_numbers');\n"},
    };
    return files;
}

acquire_request quick() {
    acquire_request request;
    request.wait = 30s;
    request.owner = "reset-test";
    return request;
}

bool pool_settled(broker_harness& h, std::size_t idle) {
    auto status = h.engine().status("app");
    return status && status->state == template_state::ready && status->pool.idle == idle &&
           status->pool.creating == 0 && status->pool.dropping == 0 && status->pool.resetting == 0;
}

// Everything a test can see of the data, in one text: rows of every table in order, and the
// sequences' states.
constexpr const char* contents_sql =
    "SELECT (SELECT string_agg(id || ':' || email, ',' ORDER BY id) FROM accounts) || '|' || "
    "(SELECT string_agg(id || ':' || account_id || ':' || total, ',' ORDER BY id) FROM orders) "
    "|| '|' || coalesce((SELECT string_agg(id || ':' || what, ',' ORDER BY id) FROM audit), '') "
    "|| '|' || coalesce((SELECT string_agg(id || ':' || body, ',' ORDER BY id) FROM "
    "empty_notes), '') || '|' || (SELECT last_value || ':' || is_called FROM invoice_numbers) "
    "|| '|' || (SELECT last_value || ':' || is_called FROM orders_id_seq) || '|' || (SELECT "
    "last_value || ':' || is_called FROM audit_id_seq)";

std::string run_sql(broker_harness& h, const lease_info& lease, const std::string& sql) {
    return h.run([&]() -> asio::awaitable<std::string> {
        auto conn = co_await pg::connection::connect(lease.dsn(), 10s);
        auto rows = co_await conn.exec(sql);
        co_return rows.rows() > 0 && rows.columns() > 0 ? std::string(rows.value(0, 0))
                                                        : std::string();
    });
}

std::string oid_of(broker_harness& h, const std::string& database) {
    return h.admin_value("SELECT oid::text FROM pg_database WHERE datname = $1", database);
}

constexpr const char* workload_sql =
    "INSERT INTO accounts (email) VALUES ('new@example.com'); "
    "INSERT INTO orders (account_id, total) VALUES (51, 9.5); "
    "UPDATE accounts SET email = 'changed@example.com' WHERE id = 3; "
    "DELETE FROM orders WHERE id BETWEEN 10 AND 20; "
    "INSERT INTO empty_notes (body) VALUES ('note'); "
    "SELECT nextval('invoice_numbers'); SELECT nextval('invoice_numbers')";

TEST(reset, a_released_clone_comes_back_fresh_under_its_own_name_and_oid) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.max_total = 1;  // one clone: the one that comes back
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }));
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    const std::string pristine = run_sql(h, lease, contents_sql);
    ASSERT_FALSE(pristine.empty());
    const std::string oid = oid_of(h, lease.database);
    run_sql(h, lease, workload_sql);
    ASSERT_NE(run_sql(h, lease, contents_sql), pristine) << "the workload changed nothing";
    h.run([&] { return h.engine().release(lease.id, release_mode::recycle, std::nullopt); });
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }))
        << "pool: idle " << h.engine().status("app")->pool.idle << " resetting "
        << h.engine().status("app")->pool.resetting << " dropping "
        << h.engine().status("app")->pool.dropping << " creating "
        << h.engine().status("app")->pool.creating;
    EXPECT_EQ(oid_of(h, lease.database), oid) << "the clone was dropped and cloned again";
    auto again = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_EQ(again.database, lease.database);
    EXPECT_EQ(run_sql(h, again, contents_sql), pristine);
    // The trigger (200 audit rows from the seed orders) and the foreign key work as in the
    // template.
    EXPECT_EQ(run_sql(h, again,
                      "INSERT INTO orders (account_id, total) VALUES (1, 1); SELECT count(*) "
                      "FROM audit"),
              "201");
    EXPECT_THROW(run_sql(h, again, "INSERT INTO orders (account_id, total) VALUES (999, 1)"),
                 pg::server_error);
}

// A vanished worker's driver may reconnect with the DSN it was given: an expired lease's clone
// goes under a new name, so that DSN reaches no one's database.
TEST(reset, an_expired_lease_ends_its_sessions_at_once_and_its_clone_is_cloned_again) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.max_total = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }));
    acquire_request request = quick();
    request.ttl = 2s;
    auto lease = h.run([&] { return h.engine().acquire("app", request); });
    const std::string pristine = run_sql(h, lease, contents_sql);
    // A worker that writes, holds a session and vanishes without releasing.
    auto session = h.run([&] { return pg::connection::connect(lease.dsn(), 10s); });
    h.run([&] { return session.exec(workload_sql); });
    ASSERT_TRUE(h.wait_until(
        [&] {
            return h.run([&]() -> asio::awaitable<bool> {
                try {
                    co_await session.exec("SELECT 1");
                    co_return false;
                } catch (const pg::connection_error&) {
                    co_return true;
                }
            });
        },
        10s));
    EXPECT_LT(std::chrono::system_clock::now() - lease.expires_at, 1s) << "ended late";
    EXPECT_FALSE(h.engine().find_lease(lease.id));
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }));
    EXPECT_EQ(oid_of(h, lease.database), "") << "the expired lease's database is still there";
    EXPECT_THROW(run_sql(h, lease, "SELECT 1"), pg::pg_error);
    auto again = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_NE(again.database, lease.database);
    EXPECT_EQ(run_sql(h, again, contents_sql), pristine);
}

// Someone may still be inspecting a kept clone when its time is over: it is cloned again too.
TEST(reset, a_kept_clone_is_cloned_again_when_its_time_is_over) {
    broker_harness h;
    auto& settings = h.add_migrations_template("app", schema());
    settings.pool.min_idle = 1;
    settings.pool.max_total = 1;
    settings.lease.max_keep = 2s;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }));
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    const std::string pristine = run_sql(h, lease, contents_sql);
    run_sql(h, lease, workload_sql);
    h.run([&] { return h.engine().release(lease.id, release_mode::keep, 3600s); });
    EXPECT_EQ(h.engine().status("app")->pool.kept, 1u);
    h.run_for(1s);
    EXPECT_NE(run_sql(h, lease, contents_sql), pristine) << "kept as the test left it";
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }, 10s));
    EXPECT_THROW(run_sql(h, lease, "SELECT 1"), pg::pg_error);
    auto again = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_NE(again.database, lease.database);
    EXPECT_EQ(run_sql(h, again, contents_sql), pristine);
}

TEST(reset, a_sticky_reset_keeps_the_lease_and_the_holders_idle_session) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }));
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    h.run([&]() -> asio::awaitable<void> {
        auto session = co_await pg::connection::connect(lease.dsn(), 10s);
        auto pristine = co_await session.exec(contents_sql);
        const std::string before(pristine.value(0, 0));
        for (int round = 0; round < 3; ++round) {
            co_await session.exec(workload_sql);
            co_await session.exec("TRUNCATE audit");
            const reset_answer answer = co_await h.engine().reset(lease.id);
            EXPECT_EQ(answer.result, "reset") << answer.reason;
            EXPECT_EQ(answer.lease.database, lease.database);
            EXPECT_EQ(answer.lease.expires_at, lease.expires_at);
            // The same session, still connected, sees the template's state.
            auto after = co_await session.exec(contents_sql);
            EXPECT_EQ(std::string(after.value(0, 0)), before) << "round " << round;
        }
        // Inside a transaction, the session keeps the reset off.
        co_await session.exec("BEGIN; SELECT 1");
        try {
            co_await h.engine().reset(lease.id);
            ADD_FAILURE() << "a reset under an open transaction went ahead";
        } catch (const broker_error& e) {
            EXPECT_EQ(e.code(), "sessions_busy");
            EXPECT_NE(std::string(e.what()).find("idle in transaction"), std::string::npos)
                << e.what();
        }
        co_await session.exec("ROLLBACK");
    });
}

TEST(reset, ddl_falls_back_to_cloning_again_under_the_same_name) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }));
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    const std::string pristine = run_sql(h, lease, contents_sql);
    run_sql(h, lease,
            "ALTER TABLE accounts ADD COLUMN nickname text; " + std::string(workload_sql));
    const reset_answer answer = h.run([&] { return h.engine().reset(lease.id); });
    EXPECT_EQ(answer.result, "reclone");
    EXPECT_EQ(answer.lease.database, lease.database) << "the same name, cloned again";
    EXPECT_EQ(run_sql(h, lease, contents_sql), pristine);
    EXPECT_EQ(run_sql(h, lease,
                      "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                      "'nickname'"),
              "0");
    // After cloning again it resets in place again.
    run_sql(h, lease, workload_sql);
    EXPECT_EQ(h.run([&] { return h.engine().reset(lease.id); }).result, "reset");
    EXPECT_EQ(run_sql(h, lease, contents_sql), pristine);
}

// A table grown past what a DELETE empties cheaply is truncated, and with it the tables whose
// foreign keys point at it; a small one is emptied by DELETE and the others keep their files.
TEST(reset, a_large_touched_table_is_truncated_with_its_referencing_tables_a_small_one_deleted) {
    broker_harness h;
    h.add_migrations_template("app", schema()).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, 1); }));
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    const std::string pristine = run_sql(h, lease, contents_sql);
    const auto file_of = [&](const char* table) {
        return run_sql(h, lease, std::string("SELECT pg_relation_filenode('") + table + "')");
    };
    const std::string orders_file = file_of("orders");
    const std::string accounts_file = file_of("accounts");

    // Small: a row in empty_notes. Its file and every other table's stay.
    run_sql(h, lease, "INSERT INTO empty_notes (body) VALUES ('small')");
    ASSERT_EQ(h.run([&] { return h.engine().reset(lease.id); }).result, "reset");
    EXPECT_EQ(run_sql(h, lease, contents_sql), pristine);
    EXPECT_EQ(file_of("orders"), orders_file);
    EXPECT_EQ(file_of("accounts"), accounts_file);

    // Large: 2 MB of accounts, which orders references.
    run_sql(h, lease,
            "INSERT INTO accounts (email) SELECT 'bulk' || g || repeat('x', 100) || "
            "'@example.com' FROM generate_series(1, 20000) g");
    ASSERT_GT(std::stoll(run_sql(h, lease, "SELECT pg_relation_size('accounts')")), 1 << 20);
    ASSERT_EQ(h.run([&] { return h.engine().reset(lease.id); }).result, "reset");
    EXPECT_EQ(run_sql(h, lease, contents_sql), pristine);
    EXPECT_NE(file_of("accounts"), accounts_file) << "a large table is truncated";
    EXPECT_NE(file_of("orders"), orders_file) << "its referencing table goes along";
    // The foreign key and the trigger hold, and the next reset knows the new files.
    EXPECT_THROW(run_sql(h, lease, "INSERT INTO orders (account_id, total) VALUES (999, 1)"),
                 pg::server_error);
    run_sql(h, lease, workload_sql);
    ASSERT_EQ(h.run([&] { return h.engine().reset(lease.id); }).result, "reset");
    EXPECT_EQ(run_sql(h, lease, contents_sql), pristine);
}

}  // namespace
}  // namespace pglease
