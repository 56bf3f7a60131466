// The catalog writer and the session ender on a real PostgreSQL: writes that queue go together
// and each still fails alone; sessions on a clone end without a wait of 100 ms.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "broker/backend_life.hpp"
#include "catalog/catalog_writer.hpp"
#include "pg/connection.hpp"
#include "pg/connection_pool.hpp"
#include "pg/pg_error.hpp"
#include "pool/session_ender.hpp"
#include "support/pg_test_cluster.hpp"
#include "support/run_async.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::pg_test_cluster;
using test::run_async;

std::string admin_value(const std::string& sql) {
    return run_async([&]() -> asio::awaitable<std::string> {
        auto conn =
            co_await pg::connection::connect(pg_test_cluster::cluster().admin_conninfo(), 10s);
        auto rows = co_await conn.exec(sql);
        co_return rows.rows() > 0 ? std::string(rows.value(0, 0)) : std::string();
    });
}

TEST(catalog_writer, writes_that_queue_go_together_and_a_failing_one_fails_alone) {
    // The writer's admin owns twelve databases; the thirteenth is not its own, so the comment
    // on it fails ("must be owner"), as it would for any admin that is not a superuser.
    admin_value("DROP DATABASE IF EXISTS cw_foreign");
    for (int i = 0; i < 12; ++i) {
        admin_value("DROP DATABASE IF EXISTS cw_" + std::to_string(i));
    }
    admin_value("DROP ROLE IF EXISTS cw_admin");
    admin_value("CREATE ROLE cw_admin LOGIN CREATEDB");
    admin_value("CREATE DATABASE cw_foreign");
    for (int i = 0; i < 12; ++i) {
        admin_value("CREATE DATABASE cw_" + std::to_string(i) + " OWNER cw_admin");
    }
    asio::io_context io;
    backend_life life;
    pg::connection_pool connections(pg_test_cluster::cluster().admin_conninfo() + " user=cw_admin",
                                    2, 10s);
    catalog_writer writer(io.get_executor(), connections, 2, life, "test");
    int written = 0;
    std::vector<std::string> failures;
    // Thirteen writes at once on two connections.
    for (int i = 0; i <= 12; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                catalog_comment comment =
                    clone_comment("app", "f" + std::to_string(i), std::nullopt);
                // Made outside the co_await expression: GCC 12 mishandles temporaries there.
                std::string database = i < 12 ? "cw_" + std::to_string(i) : "cw_foreign";
                try {
                    co_await writer.write(std::move(database), std::move(comment));
                    ++written;
                } catch (const pg::server_error& e) {
                    failures.push_back(e.what());
                }
            },
            asio::detached);
    }
    io.run_for(20s);
    EXPECT_EQ(written, 12);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_NE(failures[0].find("must be owner of database cw_foreign"), std::string::npos)
        << failures[0];
    EXPECT_EQ(life.background_tasks, 0) << "the writer's flushes ended";
    for (int i = 0; i < 12; ++i) {
        const auto comment = decode_catalog_comment(admin_value(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = "
            "'cw_" +
            std::to_string(i) + "'"));
        ASSERT_TRUE(comment) << i;
        EXPECT_EQ(comment->fingerprint, "f" + std::to_string(i));
    }
    for (int i = 0; i < 12; ++i) {
        admin_value("DROP DATABASE cw_" + std::to_string(i));
    }
    admin_value("DROP DATABASE cw_foreign");
    admin_value("DROP ROLE cw_admin");
}

TEST(session_ender, sessions_on_a_clone_end_within_milliseconds_and_others_stay) {
    admin_value("DROP DATABASE IF EXISTS se_clone");
    admin_value("CREATE DATABASE se_clone");
    asio::io_context io;
    pg::connection_pool connections(pg_test_cluster::cluster().admin_conninfo(), 2, 10s);
    session_ender ender(connections);
    run_async(io, [&]() -> asio::awaitable<void> {
        auto on_clone = co_await pg::connection::connect(
            pg_test_cluster::cluster().admin_conninfo("se_clone"), 10s);
        auto elsewhere =
            co_await pg::connection::connect(pg_test_cluster::cluster().admin_conninfo(), 10s);
        const auto started = std::chrono::steady_clock::now();
        const bool ended = co_await ender.end_sessions("se_clone", 2000ms);
        const auto took = std::chrono::steady_clock::now() - started;
        EXPECT_TRUE(ended);
        EXPECT_LT(took, 90ms) << "ending one session must not wait PostgreSQL's 100 ms steps";
        bool gone = false;
        try {
            co_await on_clone.exec("SELECT 1");
        } catch (const pg::connection_error&) {
            gone = true;
        }
        EXPECT_TRUE(gone) << "the session on the clone was not ended";
        auto still = co_await elsewhere.exec("SELECT 1");
        EXPECT_EQ(still.value(0, 0), "1") << "a session on another database was ended";
        EXPECT_TRUE(co_await ender.end_sessions("se_clone", 2000ms)) << "none left: true at once";
    });
    admin_value("DROP DATABASE se_clone");
}

}  // namespace
}  // namespace pglease
