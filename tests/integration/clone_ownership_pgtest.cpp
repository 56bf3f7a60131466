// Every clone belongs to the role its leases hand out, whatever the template's source, so a
// worker may create, alter and truncate anything in it.
#include <fstream>

#include <gtest/gtest.h>

#include "pg/connection.hpp"
#include "pg/pg_error.hpp"
#include "support/broker_harness.hpp"
#include "support/pg_test_cluster.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::broker_harness;
using test::pg_test_cluster;

// The schema every source below builds: a foreign key, a sequence, a trigger.
constexpr const char* schema_sql =
    "CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL);\n"
    "CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES "
    "accounts(id));\n"
    "CREATE SEQUENCE invoice_numbers START 1000;\n"
    "CREATE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email := "
    "lower(NEW.email); RETURN NEW; END $$;\n"
    "CREATE TRIGGER accounts_lower BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION "
    "lower_email();\n"
    "INSERT INTO accounts (email) VALUES ('Seed@Example.com');\n";

acquire_request quick() {
    acquire_request request;
    request.wait = 30s;
    request.owner = "ownership-test";
    return request;
}

bool pool_settled(broker_harness& h, const std::string& name, std::size_t idle) {
    auto status = h.engine().status(name);
    return status && status->state == template_state::ready && status->pool.idle == idle &&
           status->pool.creating == 0 && status->pool.dropping == 0 && status->pool.resetting == 0;
}

// Runs `sql` over the lease's own DSN as the worker would; the last statement's first value.
std::string as_worker(broker_harness& h, const lease_info& lease, const std::string& sql) {
    return h.run([&]() -> asio::awaitable<std::string> {
        auto conn = co_await pg::connection::connect(lease.dsn(), 10s);
        auto rows = co_await conn.exec(sql);
        co_return rows.rows() > 0 ? std::string(rows.value(0, 0)) : std::string();
    });
}

// What a test does to its database, each step a separate statement so a failure names it.
void worker_can_do_anything(broker_harness& h, const lease_info& lease) {
    SCOPED_TRACE("lease of " + lease.template_name + " as " + lease.user);
    EXPECT_EQ(h.admin_value("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1",
                            lease.database),
              lease.user)
        << "the clone belongs to the role the lease hands out";
    const std::vector<std::pair<std::string, std::string>> steps{
        {"CREATE TABLE mine (x int); SELECT 'created'", "created"},
        {"CREATE SCHEMA scratch; CREATE TABLE scratch.t (y int); SELECT 'schema'", "schema"},
        {"ALTER TABLE accounts ADD COLUMN nickname text; SELECT 'altered'", "altered"},
        {"INSERT INTO accounts (email) VALUES ('New@Example.com') RETURNING email",
         "new@example.com"},
        {"INSERT INTO orders (account_id) VALUES (1) RETURNING account_id", "1"},
        {"SELECT nextval('invoice_numbers')", "1000"},
        {"SELECT setval('accounts_id_seq', 500)", "500"},
        {"TRUNCATE orders, accounts RESTART IDENTITY; SELECT 'truncated'", "truncated"},
        {"CREATE OR REPLACE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
         "RETURN NEW; END $$; SELECT 'replaced'",
         "replaced"},
        {"DROP TABLE orders; SELECT 'dropped'", "dropped"},
    };
    for (const auto& [sql, expected] : steps) {
        try {
            EXPECT_EQ(as_worker(h, lease, sql), expected) << sql;
        } catch (const pg::pg_error& e) {
            ADD_FAILURE() << sql << ": " << e.what();
        }
    }
}

// A role of its own that owns a source database built by another tool.
void make_external_source(broker_harness& h, const std::string& database,
                          const std::string& owner) {
    h.admin_value("DROP DATABASE IF EXISTS " + database);
    h.admin_value("DROP ROLE IF EXISTS " + owner);
    h.admin_value("CREATE ROLE " + owner + " LOGIN PASSWORD 'owner-secret'");
    h.admin_value("CREATE DATABASE " + database + " OWNER " + owner);
    h.run([&]() -> asio::awaitable<void> {
        auto conn = co_await pg::connection::connect(
            pg_test_cluster::cluster().admin_conninfo(database), 10s);
        co_await conn.exec("SET ROLE " + owner + "; " + schema_sql);
    });
}

template_settings database_template(const std::string& name, const std::string& source) {
    template_settings settings;
    settings.name = name;
    settings.kind = source_kind::database;
    settings.database = source;
    settings.pool.min_idle = 1;
    settings.pool.max_total = 4;
    return settings;
}

TEST(clone_ownership, a_migrations_template_clone_is_the_lease_roles_to_change) {
    broker_harness h;
    h.add_migrations_template("app", {{"0001.sql", schema_sql}}).pool.min_idle = 1;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "app", 1); }))
        << h.engine().status("app")->error;
    auto lease = h.run([&] { return h.engine().acquire("app", quick()); });
    EXPECT_EQ(lease.user, h.endpoint().lease_role);
    worker_can_do_anything(h, lease);
}

TEST(clone_ownership, a_command_template_clone_is_the_lease_roles_to_change) {
    broker_harness h;
    const auto script = h.dir() / "schema.sql";
    std::ofstream(script) << schema_sql;
    template_settings settings;
    settings.name = "cmd";
    settings.kind = source_kind::command;
    settings.command = "psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -q -f schema.sql";
    settings.watch = {script};
    settings.pool.min_idle = 1;
    h.config().templates["cmd"] = settings;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "cmd", 1); }))
        << h.engine().status("cmd")->error;
    auto lease = h.run([&] { return h.engine().acquire("cmd", quick()); });
    worker_can_do_anything(h, lease);
}

TEST(clone_ownership, a_database_template_with_its_own_role_hands_out_clones_that_role_owns) {
    broker_harness h;
    make_external_source(h, "palace_external", "palace");
    auto settings = database_template("ext", "palace_external");
    settings.lease_role = "palace";
    settings.lease_password = "owner-secret";
    h.config().templates["ext"] = settings;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "ext", 1); }))
        << h.engine().status("ext")->error;
    auto lease = h.run([&] { return h.engine().acquire("ext", quick()); });
    EXPECT_EQ(lease.user, "palace");
    EXPECT_EQ(as_worker(h, lease, "SELECT email FROM accounts"), "seed@example.com");
    worker_can_do_anything(h, lease);
}

TEST(clone_ownership, a_database_template_owned_by_the_backends_lease_role_needs_no_role) {
    broker_harness h;
    const std::string worker = h.endpoint().lease_role;
    // The tool that built the source ran as the lease role, so it exists before pglease starts.
    h.admin_value("DO $$ BEGIN CREATE ROLE " + worker +
                  " LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    h.admin_value("DROP DATABASE IF EXISTS worker_external");
    h.admin_value("CREATE DATABASE worker_external OWNER " + worker);
    h.run([&]() -> asio::awaitable<void> {
        auto conn = co_await pg::connection::connect(
            pg_test_cluster::cluster().admin_conninfo("worker_external"), 10s);
        co_await conn.exec("SET ROLE " + worker + "; " + schema_sql);
    });
    h.config().templates["ext"] = database_template("ext", "worker_external");
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "ext", 1); }))
        << h.engine().status("ext")->error;
    auto lease = h.run([&] { return h.engine().acquire("ext", quick()); });
    EXPECT_EQ(lease.user, worker);
    worker_can_do_anything(h, lease);
}

TEST(clone_ownership, a_client_initialized_template_clone_is_the_lease_roles_to_change) {
    broker_harness h;
    h.config().default_pool.min_idle = 1;
    h.start();
    auto outcome = h.run([&] { return h.engine().ensure_client_template("suite", "v1", 5s, 60s); });
    ASSERT_TRUE(outcome.build);
    h.run([&]() -> asio::awaitable<void> {
        auto conn = co_await pg::connection::connect(outcome.build->dsn(), 10s);
        co_await conn.exec(schema_sql);
    });
    h.run([&] { return h.engine().finalize_build("suite", "v1", outcome.build->id); });
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "suite", 1); }));
    auto lease = h.run([&] { return h.engine().acquire("suite", quick()); });
    worker_can_do_anything(h, lease);
}

TEST(clone_ownership,
     a_database_whose_objects_another_role_owns_fails_its_build_saying_what_to_set) {
    broker_harness h;
    make_external_source(h, "palace_unset", "palace_owner");
    h.config().templates["ext"] = database_template("ext", "palace_unset");
    h.start();
    ASSERT_TRUE(
        h.wait_until([&] { return h.engine().status("ext")->state == template_state::failed; }));
    const std::string error = h.engine().status("ext")->error;
    for (const char* part :
         {"\"palace_unset\"", "owned by \"palace_owner\"", "table public.accounts",
          "templates.ext.lease_role to \"palace_owner\"", "lease_password",
          "REASSIGN OWNED BY \"palace_owner\""}) {
        EXPECT_NE(error.find(part), std::string::npos) << part << " in: " << error;
    }
    // Nothing half-built stays behind, and no lease is granted.
    EXPECT_TRUE(h.wait_until([&] { return h.managed_databases().empty(); }));
    try {
        acquire_request request = quick();
        request.wait = 1s;
        h.run([&] { return h.engine().acquire("ext", request); });
        ADD_FAILURE() << "a lease of a template that failed its build was granted";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("palace_owner"), std::string::npos) << e.what();
    }
}

TEST(clone_ownership, objects_a_superuser_owns_are_refused_since_leases_never_hand_one_out) {
    broker_harness h;
    h.admin_value("DROP DATABASE IF EXISTS super_owned");
    h.admin_value("CREATE DATABASE super_owned");
    h.run([&]() -> asio::awaitable<void> {
        auto conn = co_await pg::connection::connect(
            pg_test_cluster::cluster().admin_conninfo("super_owned"), 10s);
        co_await conn.exec(schema_sql);
    });
    h.config().templates["ext"] = database_template("ext", "super_owned");
    h.start();
    ASSERT_TRUE(
        h.wait_until([&] { return h.engine().status("ext")->state == template_state::failed; }));
    const std::string error = h.engine().status("ext")->error;
    EXPECT_NE(error.find("owned by superuser \"postgres\""), std::string::npos) << error;
    EXPECT_NE(error.find("never handed a superuser"), std::string::npos) << error;
}

TEST(clone_ownership, adopted_clones_of_the_wrong_owner_are_given_to_the_lease_role_on_start) {
    broker_harness h;
    make_external_source(h, "palace_adopt", "palace_adopt_owner");
    auto settings = database_template("ext", "palace_adopt");
    settings.lease_role = "palace_adopt_owner";
    settings.lease_password = "owner-secret";
    settings.pool.min_idle = 2;
    h.config().templates["ext"] = settings;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "ext", 2); }));
    auto lease = h.run([&] { return h.engine().acquire("ext", quick()); });
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "ext", 2); }));
    h.stop();
    // What an earlier release left: clones owned by the backend's lease role.
    const auto clones = h.managed_databases();
    int moved = 0;
    for (const auto& name : clones) {
        if (!name.ends_with("_tpl")) {
            h.admin_value("ALTER DATABASE \"" + name + "\" OWNER TO " + h.endpoint().lease_role);
            ++moved;
        }
    }
    ASSERT_EQ(moved, 3) << "two idle clones and the leased one";

    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "ext", 2); }));
    EXPECT_EQ(h.managed_databases(), clones) << "the clones were adopted, not replaced";
    for (const auto& name : clones) {
        EXPECT_EQ(h.admin_value(
                      "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name),
                  "palace_adopt_owner")
            << name;
    }
    worker_can_do_anything(h, lease);  // the lease granted before the restart
    auto idle = h.run([&] { return h.engine().acquire("ext", quick()); });
    worker_can_do_anything(h, idle);
}

TEST(clone_ownership, an_admin_that_is_not_a_superuser_hands_out_clones_the_sources_role_owns) {
    broker_harness h;
    make_external_source(h, "palace_plain_admin", "palace_plain");
    h.admin_value("DROP ROLE IF EXISTS plain_admin");
    h.admin_value("CREATE ROLE plain_admin LOGIN CREATEDB CREATEROLE");
    h.endpoint().admin_conninfo += " user=plain_admin";
    auto settings = database_template("ext", "palace_plain_admin");
    settings.lease_role = "palace_plain";
    settings.lease_password = "owner-secret";
    h.config().templates["ext"] = settings;
    h.start();
    ASSERT_TRUE(h.wait_until([&] { return pool_settled(h, "ext", 1); }))
        << h.engine().status("ext")->error;
    auto lease = h.run([&] { return h.engine().acquire("ext", quick()); });
    EXPECT_EQ(lease.user, "palace_plain");
    worker_can_do_anything(h, lease);
    h.stop();
    for (const auto& name : h.managed_databases()) {
        h.admin_value("ALTER DATABASE \"" + name + "\" IS_TEMPLATE false");
        h.admin_value("DROP DATABASE \"" + name + "\" WITH (FORCE)");
    }
    h.admin_value("DROP OWNED BY plain_admin");
    h.admin_value("DROP ROLE plain_admin");
}

}  // namespace
}  // namespace pglease
