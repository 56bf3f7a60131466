// Sends the built pgleased's HTTP API malformed, oversized, unauthorized and slow requests, checks
// each gets the documented error, and that the daemon keeps serving leases afterwards.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <regex>
#include <signal.h>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pg/connection.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/run_async.hpp"

namespace pglease::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr const char* token = "secret-token";
constexpr const char* acquire_path = "/v1/templates/app/leases";
// Well-formed, and never handed out: ids are random.
constexpr const char* unknown_id = "0123456789abcdef0123456789abcdef";
// The server gives up on a silent client after 10 s; still waiting after this is a hang.
constexpr auto slow_client_limit = 15s;

// One request the daemon must refuse, and how. "{lease}" in a target stands for the id of a
// live lease the request must leave alone.
struct bad_request {
    std::string name;
    std::string method;
    std::string target;
    std::string body;
    std::map<std::string, std::string> headers;
    bool with_token = true;
    // When set, sent as-is on a fresh connection instead of method/target/body/headers.
    std::string raw;
    // The server may close the connection without an answer instead (unparseable or slow input).
    bool may_close = false;
    int status = 0;
    std::string code;
    // Text the error message must contain: the field at fault, the allowed bound.
    std::vector<std::string> mentions;
    // Methods the Allow header of a 405 must list.
    std::vector<std::string> allow;
};

bad_request refused(std::string name, std::string method, std::string target, std::string body,
                    int status, std::string code, std::vector<std::string> mentions = {}) {
    bad_request row;
    row.name = std::move(name);
    row.method = std::move(method);
    row.target = std::move(target);
    row.body = std::move(body);
    row.status = status;
    row.code = std::move(code);
    row.mentions = std::move(mentions);
    return row;
}

bad_request invalid(std::string name, std::string method, std::string target, std::string body,
                    std::vector<std::string> mentions = {}) {
    return refused(std::move(name), std::move(method), std::move(target), std::move(body), 400,
                   "invalid_argument", std::move(mentions));
}

bad_request not_json(std::string name, std::string method, std::string target, std::string body) {
    return refused(std::move(name), std::move(method), std::move(target), std::move(body), 400,
                   "invalid_json");
}

bad_request with_header(bad_request row, std::string name, std::string value) {
    row.headers.emplace(std::move(name), std::move(value));
    return row;
}

// Sent without the client's token, and with `authorization` when it is not empty.
bad_request unauthorized(std::string name, std::string method, std::string target, std::string body,
                         std::string authorization = {}) {
    bad_request row = refused(std::move(name), std::move(method), std::move(target),
                              std::move(body), 401, "unauthorized");
    row.with_token = false;
    if (!authorization.empty()) {
        row.headers.emplace("Authorization", std::move(authorization));
    }
    return row;
}

bad_request not_allowed(std::string name, std::string method, std::string target,
                        std::vector<std::string> allow) {
    bad_request row = refused(std::move(name), std::move(method), std::move(target), {}, 405,
                              "method_not_allowed");
    row.allow = std::move(allow);
    return row;
}

bad_request raw(std::string name, std::string bytes, int status, std::string code, bool may_close) {
    bad_request row;
    row.name = std::move(name);
    row.raw = std::move(bytes);
    row.may_close = may_close;
    row.status = status;
    row.code = std::move(code);
    return row;
}

std::string labels_body(int count, std::size_t key_size, std::size_t value_size) {
    json labels = json::object();
    for (int i = 0; i < count; ++i) {
        std::string key = "k" + std::to_string(i);
        key.resize(std::max(key.size(), key_size), 'k');
        labels[key] = std::string(value_size, 'v');
    }
    return json{{"labels", labels}}.dump();
}

std::string owner_body(std::size_t size) {
    return json{{"owner", std::string(size, 'o')}}.dump();
}

std::vector<bad_request> bad_requests() {
    const std::string acquire = acquire_path;
    const std::string lease = "/v1/leases/{lease}";
    const std::string unknown = std::string("/v1/leases/") + unknown_id;
    const std::string malformed = "/v1/leases/not-a-lease-id";
    const std::string put = "/v1/templates/client_one";
    const std::string build = "/v1/templates/client_one/builds/abc123";
    const std::string unknown_build = json{{"build_id", unknown_id}}.dump();
    const std::string fingerprint = R"({"fingerprint": "abc"})";
    const std::string host = "Host: 127.0.0.1\r\n";
    const std::string bearer = std::string("Authorization: Bearer ") + token + "\r\n";
    const std::string close = "Connection: close\r\n\r\n";
    return {
        // Bodies that are not a JSON object.
        not_json("truncated JSON", "POST", acquire, R"({"ttl_seconds": 10)"),
        not_json("trailing garbage", "POST", acquire, R"({"ttl_seconds": 10} x)"),
        not_json("array body", "POST", acquire, "[1, 2]"),
        not_json("string body", "POST", acquire, R"("lease")"),
        not_json("number body", "POST", acquire, "42"),
        not_json("null body", "POST", acquire, "null"),
        not_json("form-encoded body", "POST", acquire, "ttl_seconds=10"),
        // Acquire fields of the wrong type or out of range.
        invalid("ttl as string", "POST", acquire, R"({"ttl_seconds": "10"})", {"ttl_seconds"}),
        invalid("ttl as float", "POST", acquire, R"({"ttl_seconds": 10.5})", {"ttl_seconds"}),
        invalid("negative ttl", "POST", acquire, R"({"ttl_seconds": -5})", {"ttl_seconds"}),
        invalid("zero ttl", "POST", acquire, R"({"ttl_seconds": 0})", {"ttl_seconds"}),
        invalid("ttl over max_ttl", "POST", acquire, R"({"ttl_seconds": 121})",
                {"ttl_seconds", "120"}),
        invalid("ttl of 2^63", "POST", acquire, R"({"ttl_seconds": 9223372036854775808})",
                {"ttl_seconds"}),
        invalid("ttl beyond any integer", "POST", acquire, R"({"ttl_seconds": 1e300})",
                {"ttl_seconds"}),
        invalid("ttl beyond any double", "POST", acquire, R"({"ttl_seconds": 1e999})",
                {"ttl_seconds", "out of range"}),
        invalid("a label beyond any double", "POST", acquire,
                R"({"owner": "x", "labels": {"k": -1e999}})", {"labels.k", "out of range"}),
        invalid("a fingerprint that is not one", "POST", acquire, R"({"fingerprint": "a b"})",
                {"fingerprint"}),
        invalid("wait over max_wait", "POST", acquire, R"({"wait_seconds": 6})",
                {"wait_seconds", "5"}),
        invalid("negative wait", "POST", acquire, R"({"wait_seconds": -1})", {"wait_seconds"}),
        invalid("labels as array", "POST", acquire, R"({"labels": ["a", "b"]})", {"labels"}),
        invalid("label value as number", "POST", acquire, R"({"labels": {"team": 7}})", {"labels"}),
        invalid("33 labels", "POST", acquire, labels_body(33, 2, 1), {"labels"}),
        invalid("label key of 65 chars", "POST", acquire, labels_body(1, 65, 1), {"labels"}),
        invalid("label value of 257 chars", "POST", acquire, labels_body(1, 2, 257), {"labels"}),
        invalid("owner as number", "POST", acquire, R"({"owner": 12})", {"owner"}),
        invalid("owner of 201 chars", "POST", acquire, owner_body(201), {"owner"}),
        invalid("unknown field", "POST", acquire, R"({"tll_seconds": 10})", {"tll_seconds"}),
        // Things that do not exist.
        refused("acquire from an unknown template", "POST", "/v1/templates/nope/leases", "{}", 404,
                "unknown_template"),
        refused("get an unknown template", "GET", "/v1/templates/nope", {}, 404,
                "unknown_template"),
        refused("get an unknown lease", "GET", unknown, {}, 404, "unknown_lease"),
        refused("renew an unknown lease", "POST", unknown + "/renew", "{}", 404, "unknown_lease"),
        refused("release an unknown lease", "DELETE", unknown + "?mode=recycle", {}, 404,
                "unknown_lease"),
        refused("get a malformed lease id", "GET", malformed, {}, 404, "unknown_lease"),
        refused("renew a malformed lease id", "POST", malformed + "/renew", "{}", 404,
                "unknown_lease"),
        refused("release a malformed lease id", "DELETE", malformed + "?mode=recycle", {}, 404,
                "unknown_lease"),
        // Renewals of the live lease that must not change it.
        invalid("renew over max_ttl", "POST", lease + "/renew", R"({"ttl_seconds": 121})",
                {"ttl_seconds", "120"}),
        invalid("renew with ttl as string", "POST", lease + "/renew", R"({"ttl_seconds": "60"})",
                {"ttl_seconds"}),
        invalid("renew with a ttl beyond any double", "POST", lease + "/renew",
                R"({"ttl_seconds": 1e999})", {"ttl_seconds", "out of range"}),
        invalid("renew with an unknown field", "POST", lease + "/renew",
                R"({"extend_seconds": 60})", {"extend_seconds"}),
        not_json("renew with an array body", "POST", lease + "/renew", "[]"),
        // Releases of the live lease that must not release it.
        invalid("bad mode", "DELETE", lease + "?mode=destroy", {}, {"mode"}),
        invalid("keep_seconds without mode", "DELETE", lease + "?keep_seconds=10", {},
                {"keep_seconds"}),
        invalid("keep_seconds with mode=recycle", "DELETE", lease + "?mode=recycle&keep_seconds=10",
                {}, {"keep_seconds"}),
        invalid("keep_seconds over max_keep", "DELETE", lease + "?mode=keep&keep_seconds=61", {},
                {"keep_seconds", "60"}),
        invalid("zero keep_seconds", "DELETE", lease + "?mode=keep&keep_seconds=0", {},
                {"keep_seconds"}),
        invalid("keep_seconds not a number", "DELETE", lease + "?mode=keep&keep_seconds=abc", {},
                {"keep_seconds"}),
        invalid("unknown query parameter on release", "DELETE", lease + "?mode=recycle&force=1", {},
                {"force"}),
        invalid("unknown query parameter on list", "GET", "/v1/leases?limit=10", {}, {"limit"}),
        // Sizes.
        refused("body over 64 KiB", "POST", acquire, owner_body(std::size_t{70} * 1024), 413,
                "body_too_large"),
        raw("Content-Length over 64 KiB",
            "POST " + acquire + " HTTP/1.1\r\n" + host + bearer +
                "Content-Type: application/json\r\nContent-Length: 1048576\r\n" + close + "{}",
            413, "body_too_large", false),
        with_header(
            refused("headers over 8 KiB", "GET", "/v1/leases", {}, 431, "headers_too_large"),
            "X-Filler", std::string(std::size_t{9} * 1024, 'h')),
        // Authorization.
        unauthorized("no token", "GET", "/v1/leases", {}),
        unauthorized("wrong token", "GET", "/v1/leases", {}, "Bearer not-the-token"),
        unauthorized("token with the Basic scheme", "GET", "/v1/leases", {},
                     std::string("Basic ") + token),
        unauthorized("empty bearer token", "GET", "/v1/leases", {}, "Bearer "),
        unauthorized("acquire without a token", "POST", acquire, "{}"),
        unauthorized("put a template without a token", "PUT", put, fingerprint),
        // Paths and methods.
        refused("unknown path", "GET", "/v1/nothing", {}, 404, "not_found"),
        refused("unknown API version", "GET", "/v2/leases", {}, 404, "not_found"),
        refused("path below a template", "GET", "/v1/templates/app/extra", {}, 404, "not_found"),
        not_allowed("DELETE the template list", "DELETE", "/v1/templates", {"GET"}),
        not_allowed("POST the lease list", "POST", "/v1/leases", {"GET"}),
        not_allowed("PUT /healthz", "PUT", "/healthz", {"GET"}),
        not_allowed("GET renew", "GET", lease + "/renew", {"POST"}),
        not_allowed("PATCH a lease", "PATCH", lease, {"GET", "DELETE"}),
        not_allowed("GET a template's leases", "GET", acquire, {"POST"}),
        // Client-initialized templates.
        invalid("template name with capitals and a dash", "PUT", "/v1/templates/Bad-Name",
                fingerprint),
        invalid("template name starting with a digit", "PUT", "/v1/templates/1app", fingerprint),
        invalid("template name of 28 chars", "PUT", "/v1/templates/" + std::string(28, 'a'),
                fingerprint),
        invalid("missing fingerprint", "PUT", put, R"({"wait_seconds": 0})", {"fingerprint"}),
        invalid("fingerprint with bad characters", "PUT", put, R"({"fingerprint": "a b/c"})",
                {"fingerprint"}),
        invalid("fingerprint of 129 chars", "PUT", put,
                json{{"fingerprint", std::string(129, 'f')}}.dump(), {"fingerprint"}),
        invalid("fingerprint as number", "PUT", put, R"({"fingerprint": 5})", {"fingerprint"}),
        invalid("template wait beyond any double", "PUT", put,
                R"({"fingerprint": "v1", "wait_seconds": 1e999})",
                {"wait_seconds", "out of range"}),
        invalid("template wait over 600", "PUT", put,
                R"({"fingerprint": "abc", "wait_seconds": 601})", {"wait_seconds"}),
        invalid("zero build ttl", "PUT", put, R"({"fingerprint": "abc", "build_ttl_seconds": 0})",
                {"build_ttl_seconds"}),
        refused("put a configured template", "PUT", "/v1/templates/app", fingerprint, 409,
                "conflict"),
        not_json("put with truncated JSON", "PUT", put, R"({"fingerprint": )"),
        refused("finalize an unknown build", "POST", build + "/finalize", unknown_build, 404,
                "unknown_build"),
        refused("abort an unknown build", "POST", build + "/abort", unknown_build, 404,
                "unknown_build"),
        invalid("finalize without build_id", "POST", build + "/finalize", "{}", {"build_id"}),
        invalid("finalize with build_id as number", "POST", build + "/finalize",
                R"({"build_id": 1})", {"build_id"}),
        // Broken HTTP: an answer, or a closed connection, but never a hang.
        raw("malformed request line", "THIS IS NOT HTTP\r\n\r\n", 400, "bad_request", true),
        raw("header line without a colon",
            "GET /healthz HTTP/1.1\r\n" + host + "no colon here\r\n" + close, 400, "bad_request",
            true),
        raw("Content-Length not a number",
            "POST " + acquire + " HTTP/1.1\r\n" + host + bearer + "Content-Length: ten\r\n" +
                close + "{}",
            400, "bad_request", true),
        raw("slow-loris headers", "GET /v1/leases HTTP/1.1\r\n" + host + "X-Slow: ", 408,
            "request_timeout", true),
        raw("body that never arrives",
            "POST " + acquire + " HTTP/1.1\r\n" + host + bearer +
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"owner\": ",
            408, "request_timeout", true),
    };
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

// Checks `response` is the JSON error `expected` describes.
void expect_error(const bad_request& expected, const http_response& response) {
    EXPECT_EQ(response.status, expected.status) << response.body;
    EXPECT_TRUE(response.header("content-type").starts_with("application/json"))
        << "Content-Type: " << response.header("content-type");
    json body;
    try {
        body = response.json();
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        return;
    }
    const bool shaped = body.is_object() && body.size() == 1 && body.contains("error") &&
                        body["error"].is_object() && body["error"].contains("code") &&
                        body["error"]["code"].is_string() && body["error"].contains("message") &&
                        body["error"]["message"].is_string();
    ASSERT_TRUE(shaped) << "not {\"error\": {\"code\", \"message\"}}: " << response.body;
    EXPECT_EQ(body["error"]["code"], expected.code) << response.body;
    const std::string message = body["error"]["message"];
    EXPECT_FALSE(message.empty()) << response.body;
    for (const auto& mention : expected.mentions) {
        EXPECT_TRUE(message.find(mention) != std::string::npos)
            << "the message does not mention " << mention << ": " << message;
    }
    if (expected.status == 401) {
        EXPECT_TRUE(response.header("www-authenticate").starts_with("Bearer"))
            << "WWW-Authenticate: " << response.header("www-authenticate");
    }
    for (const auto& method : expected.allow) {
        EXPECT_TRUE(response.header("allow").find(method) != std::string::npos)
            << "Allow: " << response.header("allow") << " lacks " << method;
    }
}

// Sends a raw request and checks the answer, or that the server hung up when it may.
void expect_raw_error(const bad_request& expected, http_client& client) {
    const auto start = clock::now();
    const std::string raw = client.send_raw(expected.raw, slow_client_limit);
    const auto took = clock::now() - start;
    // RFC 9112: a server answers an unparseable or timed-out request and closes the connection.
    EXPECT_LT(took, slow_client_limit - 500ms)
        << "the server neither closed the connection nor stopped waiting; it sent: " << raw;
    if (raw.empty() && expected.may_close) {
        return;
    }
    const auto response = http_client::parse(raw);
    ASSERT_TRUE(response) << "no complete HTTP response: \"" << raw << "\"";
    expect_error(expected, *response);
}

class http_bad_input : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir("http-bad-input");
        fs::create_directories(dir_ / "migrations");
        std::ofstream(dir_ / "migrations" / "001_widgets.sql")
            << "CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL);\n"
               "INSERT INTO widgets VALUES (1, 'first');\n";
        const json config = {{"templates",
                              {{"app",
                                {{"migrations", (dir_ / "migrations").string()},
                                 {"pool", {{"min_idle", 1}, {"max_total", 2}}},
                                 {"lease",
                                  {{"ttl_seconds", 60},
                                   {"max_ttl_seconds", 120},
                                   {"wait_seconds", 5},
                                   {"max_wait_seconds", 5},
                                   {"keep_seconds", 60},
                                   {"max_keep_seconds", 60}}}}}}}};
        std::ofstream(dir_ / "pglease.json") << config.dump(2);
        // The daemon reads its token from the environment it inherits at the fork.
        ::setenv("PGLEASE_TOKEN", token, 1);
        daemon_ = std::make_unique<daemon_process>(
            PGLEASED_PATH,
            std::vector<std::string>{"--config", (dir_ / "pglease.json").string(), "--data-dir",
                                     (dir_ / "data").string(), "--listen", "127.0.0.1:0"},
            dir_ / "pgleased.log");
        ::unsetenv("PGLEASE_TOKEN");
        port_ = wait_until_ready(90s);
    }

    static void TearDownTestSuite() {
        if (daemon_ && !daemon_->exited()) {
            ::kill(daemon_->pid(), SIGTERM);
            const auto code = daemon_->wait_exit();
            EXPECT_EQ(code, 0) << "pgleased did not stop cleanly after the bad input\n"
                               << daemon_->log();
        }
        daemon_.reset();
        fs::remove_all(dir_);
    }

    void SetUp() override {
        ASSERT_NE(port_, 0) << "pgleased did not become ready\n"
                            << (daemon_ ? daemon_->log() : std::string());
    }

    // The HTTP port once GET /readyz answers 200, or 0.
    static std::uint16_t wait_until_ready(std::chrono::seconds limit) {
        const auto until = clock::now() + limit;
        if (!daemon_->wait_for_log("http listening on", limit)) {
            return 0;
        }
        const auto port = http_port_in(daemon_->log());
        if (!port) {
            return 0;
        }
        http_client client("127.0.0.1", *port);
        while (clock::now() < until && !daemon_->exited()) {
            try {
                if (client.get("/readyz").status == 200) {
                    return *port;
                }
            } catch (const std::exception&) {
                // Not accepting yet: try again.
            }
            std::this_thread::sleep_for(200ms);
        }
        return 0;
    }

    static http_client client(bool with_token = true) {
        http_client c("127.0.0.1", port_);
        if (with_token) {
            c.set_token(token);
        }
        return c;
    }

    static inline fs::path dir_;
    static inline std::unique_ptr<daemon_process> daemon_;
    static inline std::uint16_t port_ = 0;
};

// Runs every row of bad_requests() against a live lease that none of them may change.
void reject_every_bad_request(http_client& with_token, http_client& without_token) {
    const auto acquired = with_token.post(
        acquire_path, {{"owner", "http_bad_input"}, {"labels", {{"suite", "http_bad_input"}}}});
    ASSERT_EQ(acquired.status, 201) << acquired.body;
    const json lease = acquired.json();
    const std::string id = lease.at("id");

    const auto rows = bad_requests();
    ASSERT_GE(rows.size(), 30u);
    for (const auto& row : rows) {
        SCOPED_TRACE("row: " + row.name);
        if (!row.raw.empty()) {
            expect_raw_error(row, with_token);
            continue;
        }
        http_client& client = row.with_token ? with_token : without_token;
        try {
            expect_error(row, client.request(row.method, replace_all(row.target, "{lease}", id),
                                             row.body, row.headers));
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
        }
    }

    const auto after = with_token.get("/v1/leases/" + id);
    ASSERT_EQ(after.status, 200) << "a bad request ended the live lease: " << after.body;
    EXPECT_EQ(after.json().at("expires_at"), lease.at("expires_at"))
        << "a refused renewal moved the expiry";
    const auto released = with_token.del("/v1/leases/" + id + "?mode=recycle");
    EXPECT_EQ(released.status, 204) << released.body;
    EXPECT_TRUE(released.body.empty()) << released.body;
}

// Acquires a lease, uses its database, renews and releases it.
void serve_a_normal_lease(http_client& client) {
    const auto acquired = client.post(
        acquire_path,
        {{"owner", "after the bad input"}, {"labels", {{"k", "v"}}}, {"wait_seconds", 5}});
    ASSERT_EQ(acquired.status, 201) << acquired.body;
    const json lease = acquired.json();
    const std::string id = lease.at("id");
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{32}"))) << id;
    EXPECT_EQ(lease.at("template"), "app");
    EXPECT_EQ(lease.at("owner"), "after the bad input");
    EXPECT_EQ(lease.at("labels"), json({{"k", "v"}}));
    const std::string dsn = lease.at("dsn");

    const std::string read = run_async([&]() -> boost::asio::awaitable<std::string> {
        auto db = co_await pg::connection::connect(dsn, 10s);
        co_await db.exec("INSERT INTO widgets VALUES (2, 'second')");
        auto rows = co_await db.exec("SELECT string_agg(name, ',' ORDER BY id) FROM widgets");
        co_return std::string(rows.value(0, 0));
    });
    EXPECT_EQ(read, "first,second");

    const auto renewed = client.post("/v1/leases/" + id + "/renew", {{"ttl_seconds", 90}});
    EXPECT_EQ(renewed.status, 200) << renewed.body;
    EXPECT_EQ(renewed.json().at("id"), id);

    const auto released = client.del("/v1/leases/" + id + "?mode=recycle");
    EXPECT_EQ(released.status, 204) << released.body;
    const auto gone = client.get("/v1/leases/" + id);
    EXPECT_EQ(gone.status, 404) << gone.body;
    const auto app = client.get("/v1/templates/app");
    ASSERT_EQ(app.status, 200) << app.body;
    EXPECT_EQ(app.json().at("pool").at("leased"), 0) << app.body;
}

void expect_no_leases(http_client& client) {
    const auto leases = client.get("/v1/leases");
    ASSERT_EQ(leases.status, 200) << leases.body;
    EXPECT_EQ(leases.json(), json({{"leases", json::array()}})) << "leaked leases";
}

TEST_F(http_bad_input, refuses_each_bad_request_with_its_error_and_keeps_serving_leases) {
    http_client with_token = client();
    http_client without_token = client(false);
    reject_every_bad_request(with_token, without_token);
    ASSERT_FALSE(daemon_->exited()) << "pgleased died under bad input\n" << daemon_->log();
    const auto health = without_token.get("/healthz");
    EXPECT_EQ(health.status, 200) << health.body;
    expect_no_leases(with_token);
    serve_a_normal_lease(with_token);
    expect_no_leases(with_token);
}

TEST_F(http_bad_input, a_slow_client_does_not_hold_up_others) {
    http_client slow = client(false);
    auto stalled = std::async(std::launch::async, [&] {
        return slow.send_raw("GET /v1/leases HTTP/1.1\r\nHost: 127.0.0.1\r\n", slow_client_limit);
    });
    std::this_thread::sleep_for(500ms);
    http_client quick = client();
    for (int i = 0; i < 5; ++i) {
        const auto start = clock::now();
        const auto leases = quick.get("/v1/leases");
        EXPECT_EQ(leases.status, 200) << leases.body;
        EXPECT_LT(clock::now() - start, 2s) << "a stalled client delayed another";
    }
    const std::string answer = stalled.get();
    if (!answer.empty()) {
        EXPECT_EQ(http_client::status_of(answer), 408) << answer;
    }
}

}  // namespace
}  // namespace pglease::test
