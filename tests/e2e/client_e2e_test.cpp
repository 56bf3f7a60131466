// The C++ client library against the built pgleased, as a test suite in C++ would use it.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <netinet/in.h>
#include <pglease/client.hpp>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include "support/daemon_process.hpp"
#include "support/http_client.hpp"

namespace pglease::test {
namespace {

namespace fs = std::filesystem;
namespace pc = pglease::client;
using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr int min_idle = 2;
constexpr int max_total = 4;

using pg_conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using pg_result = std::unique_ptr<PGresult, decltype(&PQclear)>;

// The first value `sql` returns over `dsn`, with `params` as $1, $2 …; throws with libpq's
// message when the connection or the query fails.
std::string query_value(const std::string& dsn, const std::string& sql,
                        const std::vector<std::string>& params = {}) {
    pg_conn conn(PQconnectdb(dsn.c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        throw std::runtime_error("PQconnectdb: " + std::string(PQerrorMessage(conn.get())));
    }
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) {
        values.push_back(p.c_str());
    }
    pg_result result(PQexecParams(conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0),
                     &PQclear);
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK || PQntuples(result.get()) < 1) {
        throw std::runtime_error("PQexecParams " + sql + ": " +
                                 std::string(PQerrorMessage(conn.get())));
    }
    return PQgetvalue(result.get(), 0, 0);
}

bool database_exists(const std::string& any_dsn, const std::string& name) {
    return query_value(any_dsn, "SELECT count(*) FROM pg_database WHERE datname = $1", {name}) ==
           "1";
}

// A loopback port nothing listens on.
std::uint16_t closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    const bool bound = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
                       ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    if (fd >= 0) {
        ::close(fd);
    }
    if (!bound) {
        throw std::runtime_error("no free loopback port");
    }
    return ntohs(address.sin_port);
}

pc::lease_options owned_by(std::string owner) {
    pc::lease_options options;
    options.owner = std::move(owner);
    return options;
}

pc::lease_options with_ttl(std::chrono::seconds ttl) {
    pc::lease_options options;
    options.ttl = ttl;
    return options;
}

pc::lease_options with_wait(std::chrono::seconds wait) {
    pc::lease_options options;
    options.wait = wait;
    return options;
}

bool eventually(const std::function<bool()>& condition, std::chrono::seconds limit = 60s) {
    for (const auto until = steady::now() + limit; steady::now() < until;
         std::this_thread::sleep_for(200ms)) {
        if (condition()) {
            return true;
        }
    }
    return condition();
}

// One pgleased for the suite, with template "app" (min_idle 2, max_total 4).
class client_e2e : public ::testing::Test {
  public:
    static void SetUpTestSuite() {
        dir_ = temp_dir("client");
        fs::create_directories(dir_ / "migrations");
        std::ofstream(dir_ / "migrations" / "0001_items.sql")
            << "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);";
        const json config{
            {"templates",
             {{"app",
               {{"migrations", "migrations"},
                {"pool", {{"min_idle", min_idle}, {"max_total", max_total}}},
                {"lease",
                 {{"ttl_seconds", 60}, {"max_ttl_seconds", 600}, {"wait_seconds", 10}}}}}}}};
        std::ofstream(dir_ / "pglease.json") << config.dump(2);
        daemon_ = new daemon_process(PGLEASED_PATH,
                                     {"--config", (dir_ / "pglease.json").string(), "--data-dir",
                                      (dir_ / "data").string(), "--listen", "127.0.0.1:0"},
                                     dir_ / "pgleased.log");
        if (!daemon_->wait_for_log("http listening on")) {
            return;
        }
        port_ = *http_port_in(daemon_->log());
        http_client probe("127.0.0.1", port_);
        eventually([&] { return probe.get("/readyz").status == 200; }, 90s);
    }

    static void TearDownTestSuite() {
        if (daemon_ != nullptr) {
            ::kill(daemon_->pid(), SIGTERM);
            daemon_->wait_exit();
            delete daemon_;
            daemon_ = nullptr;
        }
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

  protected:
    void SetUp() override {
        ASSERT_NE(port_, 0) << "pgleased did not listen:\n" << daemon_->log();
        // Every test starts from a warm, quiet pool.
        ASSERT_TRUE(settled(0)) << api_.get("/v1/templates/app").body << "\n" << daemon_->log();
    }

    static std::string base_url() { return "http://127.0.0.1:" + std::to_string(port_); }

    json pool() { return api_.get("/v1/templates/app").json()["pool"]; }

    // Waits until the pool holds min_idle idle and `leased` leased clones, none in flight.
    bool settled(int leased) {
        return eventually([&] {
            const json p = pool();
            return p["idle"] == min_idle && p["leased"] == leased && p["creating"] == 0 &&
                   p["dropping"] == 0 && p["resetting"] == 0;
        });
    }

    std::size_t listed_leases() { return api_.get("/v1/leases").json()["leases"].size(); }

    // The lease is over: renewing it is refused as an unknown lease.
    static void expect_unknown(pc::client& c, const std::string& id) {
        try {
            c.renew(id);
            ADD_FAILURE() << "renew of lease " << id << " succeeded after its release";
        } catch (const pc::error& e) {
            EXPECT_EQ(e.status(), 404) << e.what();
            EXPECT_EQ(e.code(), "unknown_lease") << e.what();
        }
    }

    static inline fs::path dir_;
    static inline daemon_process* daemon_ = nullptr;
    static inline std::uint16_t port_ = 0;
    http_client api_{"127.0.0.1", port_};
};

TEST_F(client_e2e, a_scoped_lease_connects_and_is_released_when_the_scope_ends) {
    pc::client c(base_url());
    std::string id;
    {
        pc::lease held(c, "app", owned_by("scoped"));
        id = held.id();
        EXPECT_EQ(query_value(held.dsn(), "SELECT 1"), "1");
        EXPECT_EQ(query_value(held.dsn(), "SELECT current_database()"), held.data().database);
        EXPECT_EQ(c.template_status("app").leased, 1);
        EXPECT_EQ(listed_leases(), 1u);

        // What the client read is what the server holds.
        const json server = api_.get("/v1/leases/" + id).json();
        const pc::lease_data& data = held.data();
        EXPECT_EQ(data.template_name, "app");
        EXPECT_EQ(data.dsn, server["dsn"]);
        EXPECT_EQ(data.database, server["database"]);
        EXPECT_EQ(data.fingerprint, server["fingerprint"]);
        EXPECT_EQ(data.host, server["host"]);
        EXPECT_EQ(data.port, server["port"]);
        EXPECT_EQ(data.user, server["user"]);
        EXPECT_EQ(data.password, server["password"]);
        EXPECT_EQ(data.backend, server["backend"]);
        const auto remaining = data.expires_at - std::chrono::system_clock::now();
        EXPECT_GT(remaining, 50s);  // the template's ttl_seconds is 60
        EXPECT_LT(remaining, 61s);
        std::vector<pc::template_data> listed = c.templates();
        ASSERT_EQ(listed.size(), 1u);
        EXPECT_EQ(listed[0].name, "app");
        EXPECT_EQ(listed[0].state, "ready");
        EXPECT_EQ(listed[0].source, "migrations");
        EXPECT_EQ(listed[0].fingerprint, data.fingerprint);
        EXPECT_EQ(listed[0].leased, 1);
        EXPECT_EQ(listed[0].min_idle, min_idle);
        EXPECT_EQ(listed[0].max_total, max_total);
    }
    EXPECT_EQ(c.template_status("app").leased, 0);
    EXPECT_EQ(listed_leases(), 0u);
    expect_unknown(c, id);
}

TEST_F(client_e2e, an_exception_that_unwinds_the_scope_releases_the_lease) {
    pc::client c(base_url());
    std::string id;
    try {
        pc::lease held(c, "app");
        id = held.id();
        EXPECT_EQ(c.template_status("app").leased, 1);
        throw std::logic_error("the test body failed");
    } catch (const std::logic_error& e) {
        EXPECT_STREQ(e.what(), "the test body failed");
    }
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(c.template_status("app").leased, 0);
    EXPECT_EQ(listed_leases(), 0u);
    expect_unknown(c, id);
}

TEST_F(client_e2e, auto_renew_keeps_a_lease_past_its_ttl_until_the_scope_ends) {
    pc::client c(base_url());
    std::string id;
    {
        pc::lease held(c, "app", with_ttl(2s), true);
        id = held.id();
        std::this_thread::sleep_for(6s);
        EXPECT_EQ(api_.get("/v1/leases/" + id).status, 200) << "the lease expired";
        EXPECT_EQ(query_value(held.dsn(), "SELECT 1"), "1");
        EXPECT_EQ(c.template_status("app").leased, 1);
    }
    EXPECT_EQ(c.template_status("app").leased, 0);
    expect_unknown(c, id);
}

TEST_F(client_e2e, without_auto_renew_a_short_lease_expires_and_its_scope_end_is_quiet) {
    pc::client c(base_url());
    {
        pc::lease held(c, "app", with_ttl(2s));
        std::this_thread::sleep_for(6s);
        EXPECT_EQ(api_.get("/v1/leases/" + held.id()).status, 404) << "the lease did not expire";
    }  // Releasing the expired lease fails, and the destructor swallows that.
    EXPECT_EQ(c.template_status("app").leased, 0);
}

TEST_F(client_e2e, release_with_reuse_hands_the_same_database_back_idle) {
    pc::client c(base_url());
    // Two leases held elsewhere fill the pool to max_total, so the clone handed back is not
    // surplus to min_idle and stays.
    const pc::lease_data first = c.acquire("app", owned_by("holder"));
    const pc::lease_data second = c.acquire("app", owned_by("holder"));
    ASSERT_TRUE(settled(2)) << pool().dump();
    std::string database;
    {
        pc::lease held(c, "app");
        database = held.data().database;
        EXPECT_EQ(c.template_status("app").idle, 1);
        held.release_with(pc::release_mode::reuse);
    }
    std::this_thread::sleep_for(2s);
    const pc::template_data after = c.template_status("app");
    EXPECT_EQ(after.idle, 2);
    EXPECT_EQ(after.leased, 2);
    EXPECT_EQ(after.dropping, 0);
    EXPECT_TRUE(database_exists(first.dsn, database)) << database << " was dropped";

    // The default mode, recycle, brings the database back to the template's state: reset in
    // place, what the holder wrote is gone.
    std::string recycled;
    std::string recycled_dsn;
    {
        pc::lease held(c, "app");
        recycled = held.data().database;
        recycled_dsn = held.data().dsn;
        query_value(recycled_dsn, "INSERT INTO items (name) VALUES ('mine') RETURNING id", {});
    }
    EXPECT_TRUE(settled(2)) << pool().dump();
    EXPECT_TRUE(database_exists(first.dsn, recycled)) << recycled << " was cloned again";
    EXPECT_EQ(query_value(recycled_dsn, "SELECT count(*) FROM items", {}), "0")
        << "the holder's row survived the recycle";
    c.release(first.id);
    c.release(second.id);
}

TEST_F(client_e2e, a_sticky_reset_keeps_the_lease_and_its_idle_connection) {
    pc::client c(base_url());
    pc::lease held(c, "app");
    pg_conn session(PQconnectdb(held.dsn().c_str()), &PQfinish);
    ASSERT_EQ(PQstatus(session.get()), CONNECTION_OK) << PQerrorMessage(session.get());
    const auto exec = [&](const char* sql) {
        pg_result result(PQexec(session.get(), sql), &PQclear);
        const auto status = PQresultStatus(result.get());
        EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
            << sql << ": " << PQerrorMessage(session.get());
        return status == PGRES_TUPLES_OK ? std::string(PQgetvalue(result.get(), 0, 0))
                                         : std::string();
    };
    for (int test = 0; test < 3; ++test) {
        exec("INSERT INTO items (name) VALUES ('one'), ('two')");
        const pc::reset_data reset = held.reset();
        EXPECT_EQ(reset.result, "reset") << reset.reason;
        EXPECT_EQ(reset.lease.id, held.id());
        EXPECT_EQ(held.data().database, reset.lease.database);
        EXPECT_EQ(exec("SELECT count(*) FROM items"), "0") << "test " << test;
    }
    EXPECT_EQ(c.template_status("app").recycle, "reset");

    // A session inside a transaction keeps the reset off, and the error says so.
    exec("BEGIN");
    try {
        held.reset();
        ADD_FAILURE() << "a reset went through a session's open transaction";
    } catch (const pc::error& e) {
        EXPECT_EQ(e.status(), 409);
        EXPECT_EQ(e.code(), "sessions_busy");
    }
    exec("ROLLBACK");
    EXPECT_THROW(c.reset("no-such-lease"), pc::error);
}

TEST_F(client_e2e, an_unknown_template_is_a_typed_error_with_the_servers_message) {
    const auto answer = api_.post("/v1/templates/nosuch/leases", json::object());
    ASSERT_EQ(answer.status, 404);
    const std::string message = answer.json()["error"]["message"];
    pc::client c(base_url());
    try {
        c.acquire("nosuch");
        FAIL() << "acquire of an unknown template succeeded";
    } catch (const pc::unreachable_error& e) {
        FAIL() << "unreachable: " << e.what();
    } catch (const pc::error& e) {
        EXPECT_EQ(e.status(), 404);
        EXPECT_EQ(e.code(), "unknown_template");
        EXPECT_THAT(e.what(), ::testing::HasSubstr(message));
    }
    EXPECT_THROW(c.template_status("nosuch"), pc::error);
}

TEST_F(client_e2e, an_exhausted_pool_is_a_503_pool_exhausted_error) {
    pc::client c(base_url());
    std::vector<pc::lease_data> held;
    held.reserve(max_total);
    for (int i = 0; i < max_total; ++i) {
        held.push_back(c.acquire("app", with_wait(30s)));
    }
    try {
        c.acquire("app", with_wait(0s));
        ADD_FAILURE() << "a fifth lease was granted";
    } catch (const pc::error& e) {
        EXPECT_EQ(e.status(), 503) << e.what();
        EXPECT_EQ(e.code(), "pool_exhausted") << e.what();
    }
    for (const auto& lease : held) {
        c.release(lease.id);
    }
}

TEST_F(client_e2e, a_server_that_cannot_be_reached_is_an_unreachable_error) {
    pc::client c("http://127.0.0.1:" + std::to_string(closed_port()), {}, 5s);
    const auto started = steady::now();
    try {
        c.templates();
        ADD_FAILURE() << "a closed port answered";
    } catch (const pc::unreachable_error& e) {
        EXPECT_EQ(e.status(), 0);
        EXPECT_EQ(e.code(), "unreachable");
    }
    EXPECT_LT(steady::now() - started, 5s);
    EXPECT_THROW(pc::lease(c, "app"), pc::unreachable_error);
}

TEST_F(client_e2e, an_empty_base_url_takes_pglease_url_from_the_environment) {
    ASSERT_EQ(::setenv("PGLEASE_URL", base_url().c_str(), 1), 0);
    pc::client c;
    ::unsetenv("PGLEASE_URL");
    EXPECT_EQ(c.base_url(), base_url());
    // Not some other daemon on the default port: the lease is this daemon's.
    const pc::lease_data lease = c.acquire("app");
    EXPECT_EQ(api_.get("/v1/leases/" + lease.id).status, 200);
    c.release(lease.id);
    EXPECT_EQ(api_.get("/v1/leases/" + lease.id).status, 404);
}

}  // namespace
}  // namespace pglease::test
