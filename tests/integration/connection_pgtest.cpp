#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include "embedded/tcp_port.hpp"
#include "pg/connection.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"
#include "support/pg_test_cluster.hpp"
#include "support/run_async.hpp"

namespace pglease::pg {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using test::pg_test_cluster;
using test::run_async;
using test::when_all;

asio::awaitable<void> sleep_for(clock::duration how_long) {
    asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
    co_await timer.async_wait(asio::use_awaitable);
}

std::string tcp_conninfo(const std::string& user, const std::string& password) {
    const std::string port = std::to_string(pg_test_cluster::cluster().port());
    return make_conninfo({{"host", "127.0.0.1"},
                          {"port", port},
                          {"user", user},
                          {"password", password},
                          {"dbname", "postgres"}});
}

TEST(connection, connects_and_reads_rows_in_text) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        auto c = co_await connection::connect(db, 10s);
        EXPECT_TRUE(c.usable());
        EXPECT_GT(c.backend_pid(), 0);
        auto r = co_await c.exec(
            "SELECT 1 AS one, NULL::text AS nothing, 'x' AS x, current_database() AS db");
        EXPECT_EQ(r.rows(), 1u);
        EXPECT_EQ(r.columns(), 4u);
        EXPECT_EQ(r.value(0, 0), "1");
        EXPECT_TRUE(r.is_null(0, 1));
        EXPECT_EQ(r.optional_value(0, 1), std::nullopt);
        EXPECT_EQ(r.column_index("x"), 2u);
        EXPECT_EQ(r.column_name(3), "db");
        EXPECT_NE(db.find(std::string(r.value(0, 3))), std::string::npos);
        EXPECT_THROW((void)r.value(1, 0), std::out_of_range);
        EXPECT_THROW((void)r.column_index("missing"), std::out_of_range);

        auto p = co_await c.query("SELECT $1::int + $2::int AS sum, $3::text IS NULL AS null_param",
                                  "2", 40, std::nullopt);
        EXPECT_EQ(p.value(0, 0), "42");
        EXPECT_EQ(p.value(0, 1), "t");

        auto multi = co_await c.exec(
            "CREATE TABLE t(x int); INSERT INTO t VALUES (1), (2), (3); SELECT count(*) FROM t");
        EXPECT_EQ(multi.value(0, 0), "3");
        auto inserted = co_await c.exec("INSERT INTO t SELECT generate_series(1, 10)");
        EXPECT_EQ(inserted.affected_rows(), 10u);
        EXPECT_EQ(inserted.command_tag(), "INSERT 0 10");
    });
}

TEST(connection, copy_out_and_in_move_rows_in_binary_and_errors_keep_the_session) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        auto c = co_await connection::connect(db, 10s);
        co_await c.exec(
            "CREATE TABLE src (id int, note text, blob bytea); "
            "INSERT INTO src SELECT g, repeat(md5(g::text), 20), decode(md5(g::text), 'hex') "
            "FROM generate_series(1, 5000) g; CREATE TABLE dst (LIKE src)");
        std::string data;
        const auto sink = [&](std::string_view chunk) { data.append(chunk); };
        const std::size_t out =
            co_await c.copy_out("COPY src TO STDOUT (FORMAT binary)", sink, 30'000ms);
        EXPECT_EQ(out, 5000u);
        EXPECT_GT(data.size(), 5000u * 640) << "every row came out";
        // Fed back in pieces of 64 KiB, as a file is read.
        std::size_t offset = 0;
        const auto source = [&]() -> std::string_view {
            const std::size_t n = std::min<std::size_t>(65536, data.size() - offset);
            const std::string_view piece(data.data() + offset, n);
            offset += n;
            return piece;
        };
        const std::size_t in =
            co_await c.copy_in("COPY dst FROM STDIN (FORMAT binary)", source, 30'000ms);
        EXPECT_EQ(in, 5000u);
        auto same =
            co_await c.exec("SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst) d");
        EXPECT_EQ(same.value(0, 0), "0");

        // Bad data: the server's error, and the session goes on.
        const std::string garbage = "not a binary copy stream";
        bool fed = false;
        const auto bad = [&]() -> std::string_view {
            if (fed) {
                return {};
            }
            fed = true;
            return garbage;
        };
        EXPECT_THROW(co_await c.copy_in("COPY dst FROM STDIN (FORMAT binary)", bad), server_error);
        EXPECT_THROW(co_await c.copy_out("COPY no_such_table TO STDOUT", sink), server_error);
        auto after = co_await c.exec("SELECT count(*) FROM dst");
        EXPECT_EQ(after.value(0, 0), "5000") << "the failed COPY wrote nothing";
    });
}

TEST(connection, a_slow_statement_does_not_delay_other_connections_on_the_same_thread) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        constexpr int fast_connections = 16;
        constexpr int queries_each = 20;
        auto slow = co_await connection::connect(db, 10s);
        std::vector<connection> fast;
        fast.reserve(fast_connections);
        for (int i = 0; i < fast_connections; ++i) {
            fast.push_back(co_await connection::connect(db, 10s));
        }
        const auto started = clock::now();
        clock::time_point slow_done;
        clock::time_point last_fast_done;
        int fast_queries = 0;
        std::vector<std::function<asio::awaitable<void>()>> tasks;
        tasks.emplace_back([&]() -> asio::awaitable<void> {
            co_await slow.exec("SELECT pg_sleep(1.5)");
            slow_done = clock::now();
        });
        for (auto& c : fast) {
            tasks.emplace_back([&]() -> asio::awaitable<void> {
                for (int i = 0; i < queries_each; ++i) {
                    auto r = co_await c.query("SELECT $1::int * 2", i);
                    EXPECT_EQ(r.value(0, 0), std::to_string(i * 2));
                    ++fast_queries;
                }
                last_fast_done = std::max(last_fast_done, clock::now());
            });
        }
        co_await when_all(std::move(tasks));
        EXPECT_EQ(fast_queries, fast_connections * queries_each);
        EXPECT_GE(slow_done - started, 1500ms);
        // Every fast query finished while the slow statement was still running.
        EXPECT_LT(last_fast_done, slow_done);
        EXPECT_LT(last_fast_done - started, 1000ms);
    });
}

TEST(connection, a_server_error_keeps_its_sqlstate_and_the_connection_stays_usable) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        auto c = co_await connection::connect(db, 10s);
        try {
            co_await c.exec("SELECT 1 / 0");
            ADD_FAILURE() << "division by zero succeeded";
        } catch (const server_error& e) {
            EXPECT_EQ(e.sqlstate(), "22012");
            EXPECT_EQ(e.call(), "PQgetResult");
            EXPECT_NE(std::string(e.what()).find("division by zero"), std::string::npos);
        }
        try {
            co_await c.exec("SELECT * FROM no_such_table");
            ADD_FAILURE() << "select from a missing table succeeded";
        } catch (const undefined_object_error& e) {
            EXPECT_EQ(e.sqlstate(), "42P01");
        }
        try {
            co_await c.exec("SELEC 1");
            ADD_FAILURE() << "a syntax error succeeded";
        } catch (const server_error& e) {
            EXPECT_EQ(e.sqlstate(), "42601");
        }
        EXPECT_TRUE(c.usable());
        EXPECT_EQ((co_await c.exec("SELECT 2")).value(0, 0), "2");
    });
}

TEST(connection, a_refused_connection_says_where_and_why) {
    const auto port = std::to_string(pick_free_port());
    const auto conninfo = make_conninfo({{"host", "127.0.0.1"}, {"port", port}, {"user", "x"}});
    try {
        run_async([&] { return connection::connect(conninfo, 5s); });
        ADD_FAILURE() << "connected to a closed port";
    } catch (const connection_error& e) {
        const std::string message = e.what();
        EXPECT_EQ(e.call(), "PQconnectPoll");
        EXPECT_NE(message.find("Connection refused"), std::string::npos) << message;
        EXPECT_NE(message.find(port), std::string::npos) << message;
    }
}

TEST(connection, a_wrong_password_says_so_and_the_right_one_connects) {
    run_async([&]() -> asio::awaitable<void> {
        auto admin = co_await connection::connect(pg_test_cluster::cluster().admin_conninfo(), 10s);
        co_await admin.exec("DROP ROLE IF EXISTS pglease_pw_test");
        co_await admin.exec("CREATE ROLE pglease_pw_test LOGIN PASSWORD 'right-password'");
        try {
            co_await connection::connect(tcp_conninfo("pglease_pw_test", "wrong"), 10s);
            ADD_FAILURE() << "a wrong password was accepted";
        } catch (const connection_error& e) {
            EXPECT_NE(std::string(e.what()).find("password authentication failed"),
                      std::string::npos)
                << e.what();
        }
        auto ok =
            co_await connection::connect(tcp_conninfo("pglease_pw_test", "right-password"), 10s);
        EXPECT_EQ((co_await ok.exec("SELECT current_user")).value(0, 0), "pglease_pw_test");
    });
}

TEST(connection, the_superuser_cannot_log_in_over_tcp) {
    EXPECT_THROW(run_async([&] {
                     return connection::connect(tcp_conninfo(embedded_cluster::superuser, ""), 10s);
                 }),
                 connection_error);
}

TEST(connection, a_deadline_cancels_a_running_statement_and_the_session_survives) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        auto c = co_await connection::connect(db, 10s);
        auto admin = co_await connection::connect(db, 10s);
        const auto started = clock::now();
        try {
            co_await c.exec("SELECT pg_sleep(30)", 300ms);
            ADD_FAILURE() << "pg_sleep(30) finished within 300 ms";
        } catch (const timeout_error& e) {
            EXPECT_EQ(e.sqlstate(), "57014");
            EXPECT_NE(std::string(e.what()).find("300 ms"), std::string::npos) << e.what();
        }
        const auto elapsed = clock::now() - started;
        EXPECT_GE(elapsed, 300ms);
        EXPECT_LT(elapsed, 3s);
        EXPECT_TRUE(c.usable());
        EXPECT_EQ((co_await c.exec("SELECT 'still here'")).value(0, 0), "still here");
        auto activity = co_await admin.exec(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'");
        EXPECT_EQ(activity.value(0, 0), "0") << "the cancelled statement still runs on the server";
    });
}

TEST(connection, a_connect_deadline_applies_to_a_server_that_never_answers) {
    // A listening socket nobody accepts on: TCP connects, the startup packet is never answered.
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(listener, 8), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
    const auto port = std::to_string(ntohs(address.sin_port));
    const auto conninfo = make_conninfo(
        {{"host", "127.0.0.1"}, {"port", port}, {"user", "x"}, {"sslmode", "disable"}});
    const auto started = clock::now();
    EXPECT_THROW(run_async([&] { return connection::connect(conninfo, 300ms); }), timeout_error);
    EXPECT_LT(clock::now() - started, 3s);
    ::close(listener);
}

TEST(connection, a_backend_terminated_mid_query_is_an_error_and_the_connection_is_not_reused) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        auto victim = co_await connection::connect(db, 10s);
        auto admin = co_await connection::connect(db, 10s);
        const std::string pid = std::to_string(victim.backend_pid());
        bool victim_failed = false;
        std::vector<std::function<asio::awaitable<void>()>> tasks;
        tasks.emplace_back([&]() -> asio::awaitable<void> {
            try {
                co_await victim.exec("SELECT pg_sleep(30)");
            } catch (const connection_error& e) {
                victim_failed = true;
                EXPECT_NE(std::string(e.what()).find("terminat"), std::string::npos) << e.what();
            }
        });
        tasks.emplace_back([&]() -> asio::awaitable<void> {
            for (int i = 0; i < 200; ++i) {
                auto state = co_await admin.query(
                    "SELECT state FROM pg_stat_activity WHERE pid = $1::int", pid);
                if (state.rows() == 1 && state.value(0, 0) == "active") {
                    break;
                }
                co_await sleep_for(10ms);
            }
            co_await admin.query("SELECT pg_terminate_backend($1::int)", pid);
        });
        co_await when_all(std::move(tasks));
        EXPECT_TRUE(victim_failed);
        EXPECT_FALSE(victim.usable());
        try {
            co_await victim.exec("SELECT 1");
            ADD_FAILURE() << "a lost connection ran another statement";
        } catch (const connection_error& e) {
            EXPECT_NE(std::string(e.what()).find("connection is closed"), std::string::npos);
        }
    });
}

TEST(connection, a_cancelled_coroutine_closes_its_connection) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        auto c = co_await connection::connect(db, 10s);
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer timer(co_await asio::this_coro::executor, 200ms);
        // The timer wins the race; the statement's coroutine is cancelled mid-flight, at once.
        const auto started = std::chrono::steady_clock::now();
        auto winner =
            co_await (c.exec("SELECT pg_sleep(30)") || timer.async_wait(asio::use_awaitable));
        EXPECT_EQ(winner.index(), 1u);
        EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
        EXPECT_FALSE(c.usable());
    });
}

TEST(connection, quoting_round_trips_hostile_identifiers_and_literals) {
    const std::string db = pg_test_cluster::fresh_database();
    run_async([&]() -> asio::awaitable<void> {
        auto c = co_await connection::connect(db, 10s);
        const std::string table = "we\"ird name; DROP TABLE x; --";
        const std::string text = "it's a \\ back'slash \"and\" quote";
        co_await c.exec("CREATE TABLE " + c.quote_identifier(table) + " (v text)");
        co_await c.exec("INSERT INTO " + c.quote_identifier(table) + " VALUES (" +
                        c.quote_literal(text) + ")");
        auto r = co_await c.exec("SELECT v FROM " + c.quote_identifier(table));
        EXPECT_EQ(r.value(0, 0), text);
        auto names = co_await c.query("SELECT relname FROM pg_class WHERE relname = $1", table);
        EXPECT_EQ(names.rows(), 1u);
    });
}

}  // namespace
}  // namespace pglease::pg
