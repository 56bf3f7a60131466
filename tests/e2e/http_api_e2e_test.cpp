// The built pgleased on a real PostgreSQL, spoken to over real sockets, as test workers would.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <set>
#include <signal.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "pg/connection.hpp"
#include "pg/pg_error.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/run_async.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using test::http_client;

// A daemon with one migrations template "app" (a markers table), on a data directory that
// survives restarts of the daemon.
class api_daemon {
  public:
    explicit api_daemon(const std::string& name, int min_idle = 2, int max_total = 8)
        : dir_(test::temp_dir(name)) {
        fs::create_directories(dir_ / "migrations");
        std::ofstream(dir_ / "migrations" / "0001_markers.sql")
            << "CREATE TABLE markers (worker int NOT NULL, written_at timestamptz DEFAULT now());";
        json config{{"templates",
                     {{"app",
                       {{"migrations", "migrations"},
                        {"pool", {{"min_idle", min_idle}, {"max_total", max_total}}},
                        {"lease", {{"ttl_seconds", 120}, {"max_ttl_seconds", 600}}}}}}},
                    {"defaults", {{"pool", {{"min_idle", 1}, {"max_total", 8}}}}}};
        std::ofstream(dir_ / "pglease.json") << config.dump(2);
        start();
    }
    ~api_daemon() {
        if (process_) {
            ::kill(process_->pid(), SIGTERM);
            process_->wait_exit();
        }
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    void start() {
        process_ = std::make_unique<test::daemon_process>(
            PGLEASED_PATH,
            std::vector<std::string>{"--config", (dir_ / "pglease.json").string(), "--data-dir",
                                     (dir_ / "data").string(), "--listen", "127.0.0.1:0"},
            dir_ / ("pgleased-" + std::to_string(++starts_) + ".log"));
        if (!process_->wait_for_log("http listening on")) {
            throw std::runtime_error("pgleased did not listen:\n" + process_->log());
        }
        port_ = *test::http_port_in(process_->log());
        http_client probe("127.0.0.1", port_);
        for (const auto until = clock::now() + 90s; clock::now() < until;
             std::this_thread::sleep_for(50ms)) {
            if (probe.get("/readyz").status == 200) {
                return;
            }
        }
        throw std::runtime_error("pgleased did not become ready:\n" + process_->log());
    }
    void kill_hard() {
        ::kill(process_->pid(), SIGKILL);
        process_->wait_exit();
        process_.reset();
    }

    std::uint16_t port() const { return port_; }
    std::string log() const { return process_ ? process_->log() : std::string(); }

  private:
    fs::path dir_;
    std::unique_ptr<test::daemon_process> process_;
    std::uint16_t port_ = 0;
    int starts_ = 0;
};

json acquire(http_client& client, json body = json::object(), int expected = 201) {
    auto response = client.post("/v1/templates/app/leases", body);
    if (response.status != expected) {
        throw std::runtime_error("acquire answered " + std::to_string(response.status) + ": " +
                                 response.body);
    }
    return response.json();
}

// Runs `sql` over the lease's DSN and returns every value of the first column.
std::vector<std::string> query_as_worker(const std::string& dsn, const std::string& sql) {
    return test::run_async([&]() -> asio::awaitable<std::vector<std::string>> {
        auto conn = co_await pg::connection::connect(dsn, 10s);
        auto rows = co_await conn.exec(sql);
        std::vector<std::string> values;
        for (std::size_t i = 0; i < rows.rows(); ++i) {
            values.emplace_back(rows.value(i, 0));
        }
        co_return values;
    });
}

TEST(http_api, eight_concurrent_workers_get_isolated_databases_with_the_template_schema) {
    api_daemon daemon("workers");
    std::mutex guard;
    std::set<std::string> databases;
    std::vector<std::string> problems;
    std::vector<std::thread> workers;
    workers.reserve(8);
    for (int w = 0; w < 8; ++w) {
        workers.emplace_back([&, w] {
            try {
                http_client client("127.0.0.1", daemon.port());
                const json lease = acquire(
                    client, {{"owner", "worker-" + std::to_string(w)}, {"wait_seconds", 30}});
                {
                    std::lock_guard lock(guard);
                    if (!databases.insert(lease["database"].get<std::string>()).second) {
                        problems.emplace_back("database handed to two workers");
                    }
                }
                const std::string dsn = lease["dsn"];
                query_as_worker(dsn,
                                "INSERT INTO markers (worker) VALUES (" + std::to_string(w) + ")");
                query_as_worker(dsn, "CREATE TABLE mine_" + std::to_string(w) + " (x int)");
                std::this_thread::sleep_for(200ms);  // all eight hold their leases at once
                const auto seen = query_as_worker(dsn, "SELECT worker FROM markers");
                if (seen != std::vector<std::string>{std::to_string(w)}) {
                    std::lock_guard lock(guard);
                    problems.emplace_back("worker " + std::to_string(w) + " saw " +
                                          std::to_string(seen.size()) + " markers");
                }
                const auto released = client.del("/v1/leases/" + lease["id"].get<std::string>());
                if (released.status != 204) {
                    std::lock_guard lock(guard);
                    problems.emplace_back("release answered " + std::to_string(released.status));
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(guard);
                problems.emplace_back(e.what());
            }
        });
    }
    for (auto& t : workers) {
        t.join();
    }
    EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << daemon.log();
    EXPECT_EQ(databases.size(), 8u);
}

TEST(http_api, an_exhausted_pool_waits_for_a_release_and_a_short_wait_gets_503) {
    api_daemon daemon("exhausted", 1, 1);
    http_client client("127.0.0.1", daemon.port());
    const json held = acquire(client);

    const auto started = clock::now();
    auto refused = client.post("/v1/templates/app/leases", {{"wait_seconds", 1}});
    EXPECT_EQ(refused.status, 503);
    EXPECT_EQ(refused.json()["error"]["code"], "pool_exhausted");
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_GE(clock::now() - started, 1s);

    json waited;
    std::thread waiter([&] {
        http_client other("127.0.0.1", daemon.port());
        waited = acquire(other, {{"wait_seconds", 20}});
    });
    std::this_thread::sleep_for(700ms);
    EXPECT_EQ(client.get("/v1/templates/app").json()["pool"]["waiters"], 1);
    EXPECT_EQ(client.del("/v1/leases/" + held["id"].get<std::string>() + "?mode=reuse").status,
              204);
    waiter.join();
    ASSERT_TRUE(waited.contains("id")) << daemon.log();
    EXPECT_EQ(waited["database"], held["database"]);
}

// Sends an acquire on a connection of its own and closes it without reading the answer.
void acquire_and_leave(std::uint16_t port, const std::string& body) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    const std::string request =
        "POST /v1/templates/app/leases HTTP/1.1\r\nHost: pglease\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    ::close(fd);
}

TEST(http_api, a_lease_whose_answer_finds_its_client_gone_is_released_not_held_to_its_ttl) {
    api_daemon daemon("vanished_client", 1, 1);
    http_client client("127.0.0.1", daemon.port());
    const json held = acquire(client);
    // A worker that asks, waits, and is gone (killed, timed out) before a clone frees up.
    acquire_and_leave(daemon.port(), R"({"wait_seconds": 30, "owner": "gone"})");
    const auto waiting = [&] {
        return client.get("/v1/templates/app").json()["pool"]["waiters"].get<int>();
    };
    for (const auto until = clock::now() + 10s; waiting() == 0 && clock::now() < until;) {
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(waiting(), 1);
    ASSERT_EQ(client.del("/v1/leases/" + held["id"].get<std::string>() + "?mode=reuse").status,
              204);
    // Granted to the waiter, whose answer has nowhere to go: released again, and recycled.
    bool given_back = false;
    for (const auto until = clock::now() + 20s; !given_back && clock::now() < until;
         std::this_thread::sleep_for(50ms)) {
        const json pool = client.get("/v1/templates/app").json()["pool"];
        given_back = client.get("/v1/leases").json()["leases"].empty() && pool["leased"] == 0 &&
                     pool["idle"] == 1;
    }
    EXPECT_TRUE(given_back) << client.get("/v1/templates/app").body << "\n" << daemon.log();
    EXPECT_NE(daemon.log().find("lease answer not delivered"), std::string::npos) << daemon.log();
    // The pool serves the next worker at once.
    const json next = acquire(client, {{"wait_seconds", 10}});
    EXPECT_EQ(next["database"], held["database"]);
}

TEST(http_api, a_vanished_worker_is_expired_and_renew_keeps_a_lease_alive) {
    api_daemon daemon("expiry");
    http_client client("127.0.0.1", daemon.port());
    const json forgotten = acquire(client, {{"ttl_seconds", 2}});
    const json renewed = acquire(client, {{"ttl_seconds", 2}});
    std::this_thread::sleep_for(1200ms);
    auto renewal = client.post("/v1/leases/" + renewed["id"].get<std::string>() + "/renew",
                               {{"ttl_seconds", 5}});
    EXPECT_EQ(renewal.status, 200);
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(client.get("/v1/leases/" + forgotten["id"].get<std::string>()).status, 404);
    EXPECT_EQ(client.get("/v1/leases/" + renewed["id"].get<std::string>()).status, 200)
        << "a renewed lease expired at its first TTL";
    EXPECT_THROW(query_as_worker(forgotten["dsn"], "SELECT 1"), pg::pg_error)
        << "the expired lease's database is still usable";
    EXPECT_EQ(query_as_worker(renewed["dsn"], "SELECT 1"), std::vector<std::string>{"1"});
}

TEST(http_api, after_kill_9_and_a_restart_leases_renew_and_release_and_nothing_leaks) {
    api_daemon daemon("kill9", 2, 8);
    std::vector<json> leases;
    {
        http_client client("127.0.0.1", daemon.port());
        for (int i = 0; i < 3; ++i) {
            leases.push_back(acquire(client, {{"owner", "before-crash"}}));
            query_as_worker(leases.back()["dsn"],
                            "INSERT INTO markers VALUES (" + std::to_string(i) + ")");
        }
    }
    daemon.kill_hard();
    daemon.start();
    http_client client("127.0.0.1", daemon.port());
    std::set<std::string> held;
    for (const auto& lease : leases) {
        const std::string id = lease["id"];
        auto renewal = client.post("/v1/leases/" + id + "/renew", {{"ttl_seconds", 60}});
        EXPECT_EQ(renewal.status, 200) << renewal.body;
        EXPECT_EQ(renewal.json()["database"], lease["database"]);
        held.insert(lease["database"].get<std::string>());
    }
    // The data a worker wrote before the crash is still its own.
    EXPECT_EQ(query_as_worker(leases[0]["dsn"], "SELECT worker FROM markers"),
              std::vector<std::string>{"0"});
    for (int i = 0; i < 4; ++i) {
        const json fresh = acquire(client);
        EXPECT_FALSE(held.contains(fresh["database"].get<std::string>()))
            << "a leased database was handed out again";
        EXPECT_EQ(client.del("/v1/leases/" + fresh["id"].get<std::string>()).status, 204);
    }
    for (const auto& lease : leases) {
        EXPECT_EQ(client.del("/v1/leases/" + lease["id"].get<std::string>()).status, 204);
    }
    EXPECT_TRUE(client.get("/v1/leases").json()["leases"].empty());
    json pool;
    for (const auto until = clock::now() + 30s; clock::now() < until;
         std::this_thread::sleep_for(100ms)) {
        pool = client.get("/v1/templates/app").json()["pool"];
        if (pool["idle"] == 2 && pool["creating"] == 0 && pool["dropping"] == 0 &&
            pool["leased"] == 0) {
            break;
        }
    }
    EXPECT_EQ(pool["idle"], 2) << pool.dump();
    EXPECT_EQ(pool["dropping"], 0) << pool.dump();
}

TEST(http_api, every_lease_answered_in_a_burst_is_honoured_after_kill_9_right_after_it) {
    // Concurrent acquires share round trips to the catalog (writes that queue go together in
    // one transaction): each answered lease must still be recorded before its answer.
    api_daemon daemon("burst", 24, 32);
    {
        http_client probe("127.0.0.1", daemon.port());
        for (const auto until = clock::now() + 60s;
             clock::now() < until &&
             probe.get("/v1/templates/app").json()["pool"]["idle"].get<int>() < 24;
             std::this_thread::sleep_for(50ms)) {
        }
    }
    std::mutex guard;
    std::vector<json> answered;
    std::vector<std::string> problems;
    std::vector<std::thread> workers;
    workers.reserve(8);
    for (int w = 0; w < 8; ++w) {
        workers.emplace_back([&] {
            http_client client("127.0.0.1", daemon.port());
            for (int i = 0; i < 3; ++i) {
                auto response = client.post("/v1/templates/app/leases", {{"wait_seconds", 0}});
                std::scoped_lock lock(guard);
                if (response.status == 201) {
                    answered.push_back(response.json());
                } else {
                    problems.push_back(std::to_string(response.status) + " " + response.body);
                }
            }
        });
    }
    for (auto& worker : workers) {
        worker.join();
    }
    daemon.kill_hard();  // the moment the last answer arrived
    ASSERT_TRUE(problems.empty()) << problems.front();
    ASSERT_EQ(answered.size(), 24u);
    daemon.start();
    http_client client("127.0.0.1", daemon.port());
    std::set<std::string> databases;
    for (const auto& lease : answered) {
        const std::string id = lease["id"];
        EXPECT_TRUE(databases.insert(lease["database"].get<std::string>()).second)
            << lease["database"] << " was answered twice";
        auto renewal = client.post("/v1/leases/" + id + "/renew", {{"ttl_seconds", 60}});
        EXPECT_EQ(renewal.status, 200) << "an answered lease was lost: " << renewal.body;
        EXPECT_EQ(renewal.json().value("database", ""), lease["database"]);
    }
    EXPECT_EQ(client.get("/v1/leases").json()["leases"].size(), 24u);
    for (const auto& lease : answered) {
        EXPECT_EQ(client.del("/v1/leases/" + lease["id"].get<std::string>()).status, 204);
    }
}

TEST(http_api, four_callers_of_a_new_fingerprint_get_one_builder_and_the_same_version) {
    api_daemon daemon("client-init");
    std::mutex guard;
    std::vector<json> answers;
    std::vector<int> statuses;
    std::vector<std::thread> callers;
    callers.reserve(4);
    for (int c = 0; c < 4; ++c) {
        callers.emplace_back([&] {
            http_client client("127.0.0.1", daemon.port());
            auto response =
                client.put("/v1/templates/suite",
                           {{"fingerprint", "migrations-v1.sha-abc"}, {"wait_seconds", 60}});
            json body = response.json();
            if (response.status == 201) {
                // The builder migrates the empty template database, then finalizes it.
                query_as_worker(body["build"]["dsn"],
                                "CREATE TABLE built_by_client (id serial PRIMARY KEY)");
                auto done = client.post("/v1/templates/suite/builds/migrations-v1.sha-abc/finalize",
                                        {{"build_id", body["build"]["id"]}});
                std::lock_guard lock(guard);
                statuses.push_back(done.status);
            }
            std::lock_guard lock(guard);
            statuses.push_back(response.status);
            answers.push_back(body);
        });
    }
    for (auto& t : callers) {
        t.join();
    }
    EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 201), 1) << "not exactly one builder";
    EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 4) << "3 waiters and 1 finalize";
    http_client client("127.0.0.1", daemon.port());
    std::set<std::string> fingerprints;
    for (int i = 0; i < 4; ++i) {
        auto lease = client.post("/v1/templates/suite/leases", {{"wait_seconds", 30}});
        ASSERT_EQ(lease.status, 201) << lease.body;
        fingerprints.insert(lease.json()["fingerprint"].get<std::string>());
        EXPECT_EQ(query_as_worker(lease.json()["dsn"], "SELECT count(*) FROM built_by_client"),
                  std::vector<std::string>{"0"});
    }
    EXPECT_EQ(fingerprints.size(), 1u);
    auto again = client.put("/v1/templates/suite", {{"fingerprint", "migrations-v1.sha-abc"}});
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.json()["state"], "ready");
}

TEST(http_api, a_builder_that_vanishes_lets_the_next_caller_build) {
    api_daemon daemon("vanished-builder");
    http_client client("127.0.0.1", daemon.port());
    auto first =
        client.put("/v1/templates/flaky", {{"fingerprint", "v1"}, {"build_ttl_seconds", 2}});
    ASSERT_EQ(first.status, 201) << first.body;
    auto waiting = client.put("/v1/templates/flaky", {{"fingerprint", "v1"}, {"wait_seconds", 1}});
    EXPECT_EQ(waiting.status, 503);
    EXPECT_EQ(waiting.json()["error"]["code"], "template_building");
    std::this_thread::sleep_for(2500ms);
    auto second = client.put("/v1/templates/flaky", {{"fingerprint", "v1"}, {"wait_seconds", 5}});
    ASSERT_EQ(second.status, 201) << second.body;
    EXPECT_NE(second.json()["build"]["id"], first.json()["build"]["id"]);
    auto stale = client.post("/v1/templates/flaky/builds/v1/finalize",
                             {{"build_id", first.json()["build"]["id"]}});
    EXPECT_EQ(stale.status, 404);
    EXPECT_EQ(stale.json()["error"]["code"], "unknown_build");
    auto done = client.post("/v1/templates/flaky/builds/v1/finalize",
                            {{"build_id", second.json()["build"]["id"]}});
    EXPECT_EQ(done.status, 200) << done.body;
    EXPECT_EQ(done.json()["state"], "ready");
}

}  // namespace
}  // namespace pglease
