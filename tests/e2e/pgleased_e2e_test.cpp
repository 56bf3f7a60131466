// Drives the built pgleased binary as a user would: start it, talk to what it started, signal it.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <signal.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "embedded/tcp_port.hpp"
#include "pg/connection.hpp"
#include "pg/conninfo.hpp"
#include "process/os_user.hpp"
#include "support/daemon_process.hpp"
#include "support/process_table.hpp"
#include "support/run_async.hpp"

namespace pglease {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using test::daemon_process;
using test::temp_dir;

struct cluster_location {
    std::string socket;
    std::string port;
    std::string data_dir;
};

std::optional<cluster_location> location_in(const std::string& log) {
    static const std::regex ready(R"(ready: socket=(\S+) port=(\d+) data_dir=(\S+))");
    std::smatch match;
    if (!std::regex_search(log, match, ready)) {
        return std::nullopt;
    }
    return cluster_location{match[1], match[2], match[3]};
}

std::string query(const cluster_location& where, const std::string& sql) {
    const auto conninfo = pg::make_conninfo({{"host", where.socket},
                                             {"port", where.port},
                                             {"user", "postgres"},
                                             {"dbname", "postgres"}});
    return test::run_async([&]() -> boost::asio::awaitable<std::string> {
        auto c = co_await pg::connection::connect(conninfo, 10s);
        auto rows = co_await c.exec(sql);
        co_return rows.rows() > 0 ? std::string(rows.value(0, 0)) : std::string();
    });
}

// Starts pgleased with `args`, checks the cluster it reports answers, stops it with SIGTERM and
// checks that it exits 0 and leaves no postgres process on its data directory.
void run_until_sigterm(const std::vector<std::string>& args, const std::optional<os_user>& as_user,
                       const fs::path& log_file) {
    // Another user may not be able to reach the build tree (a checkout under /root): run a copy.
    const fs::path program = log_file.parent_path() / "pgleased";
    fs::copy_file(PGLEASED_PATH, program, fs::copy_options::overwrite_existing);
    fs::permissions(program, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                 fs::perms::others_read | fs::perms::others_exec);
    daemon_process daemon(program, args, log_file, as_user);
    ASSERT_TRUE(daemon.wait_for_log("pgleased ready")) << daemon.log();
    const auto where = location_in(daemon.log());
    ASSERT_TRUE(where) << daemon.log();
    EXPECT_EQ(query(*where, "SELECT 'alive'"), "alive");
    const std::string pgdata = query(*where, "SHOW data_directory");
    EXPECT_EQ(pgdata, (fs::path(where->data_dir) / "pgdata").string());
    EXPECT_FALSE(test::processes_mentioning(pgdata).empty());

    ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
    const auto code = daemon.wait_exit();
    ASSERT_TRUE(code) << "pgleased did not exit after SIGTERM\n" << daemon.log();
    EXPECT_EQ(*code, 0) << daemon.log();
    EXPECT_TRUE(test::processes_mentioning(pgdata).empty()) << "postgres outlived pgleased\n"
                                                            << daemon.log();
    EXPECT_NE(daemon.log().find("stopped"), std::string::npos) << daemon.log();
}

TEST(pgleased, help_documents_every_flag) {
    const fs::path dir = temp_dir("help");
    daemon_process daemon(PGLEASED_PATH, {"--help"}, dir / "out.log");
    ASSERT_EQ(daemon.wait_exit(), 0);
    const std::string help = daemon.log();
    for (const char* flag :
         {"--data-dir", "--pg-port", "--run-as", "--pg-bin-dir", "--max-connections", "--log-level",
          "--version", "--help", "--config", "--listen", "--token-file", "--prefix",
          "--max-parallel-clones", "--max-databases"}) {
        EXPECT_NE(help.find(flag), std::string::npos) << "--help does not document " << flag;
    }
    fs::remove_all(dir);
}

TEST(pgleased, a_bad_flag_is_a_usage_error) {
    const fs::path dir = temp_dir("badflag");
    daemon_process daemon(PGLEASED_PATH, {"--pg-port", "0"}, dir / "out.log");
    const auto code = daemon.wait_exit();
    ASSERT_TRUE(code);
    EXPECT_NE(*code, 0);
    EXPECT_NE(daemon.log().find("--pg-port"), std::string::npos) << daemon.log();
    fs::remove_all(dir);
}

TEST(pgleased, with_no_arguments_runs_the_embedded_cluster_until_sigterm) {
    // The real default location: /dev/shm/pglease-<uid> (or ./.pglease without room in RAM).
    const fs::path default_dir = fs::path("/dev/shm") / ("pglease-" + std::to_string(::geteuid()));
    const bool existed = fs::exists(default_dir);
    const fs::path dir = temp_dir("noargs");
    run_until_sigterm({}, std::nullopt, dir / "pgleased.log");
    if (!existed) {
        fs::remove_all(default_dir);
    }
    fs::remove_all(dir);
}

TEST(pgleased, as_a_normal_user_runs_the_embedded_cluster_until_sigterm) {
    if (!running_as_root()) {
        GTEST_SKIP() << "already a normal user: the no-argument test covers it";
    }
    const auto user = find_os_user("postgres");
    ASSERT_TRUE(user) << "the postgres account (from Debian's postgresql package) is missing";
    const fs::path default_dir = fs::path("/dev/shm") / ("pglease-" + std::to_string(user->uid));
    const bool existed = fs::exists(default_dir);
    const fs::path dir = temp_dir("normal-user");
    run_until_sigterm({}, user, dir / "pgleased.log");
    if (!existed) {
        fs::remove_all(default_dir);
    }
    fs::remove_all(dir);
}

TEST(pgleased, a_second_daemon_on_the_same_data_dir_exits_with_a_clear_message) {
    const fs::path dir = temp_dir("second");
    daemon_process first(PGLEASED_PATH, {"--data-dir", (dir / "data").string()}, dir / "first.log");
    ASSERT_TRUE(first.wait_for_log("pgleased ready")) << first.log();
    daemon_process second(PGLEASED_PATH, {"--data-dir", (dir / "data").string()},
                          dir / "second.log");
    const auto code = second.wait_exit(30s);
    ASSERT_TRUE(code) << second.log();
    EXPECT_EQ(*code, 1);
    EXPECT_NE(second.log().find("in use by another pgleased (pid " + std::to_string(first.pid())),
              std::string::npos)
        << second.log();
    const auto where = location_in(first.log());
    ASSERT_TRUE(where);
    EXPECT_EQ(query(*where, "SELECT 'first unharmed'"), "first unharmed");
    ::kill(first.pid(), SIGTERM);
    EXPECT_EQ(first.wait_exit(), 0);
    fs::remove_all(dir);
}

TEST(pgleased, a_killed_daemon_takes_its_cluster_down_and_a_restart_reuses_the_data) {
    const fs::path dir = temp_dir("sigkill");
    const std::string data = (dir / "data").string();
    {
        daemon_process daemon(PGLEASED_PATH, {"--data-dir", data}, dir / "first.log");
        ASSERT_TRUE(daemon.wait_for_log("pgleased ready")) << daemon.log();
        const auto where = location_in(daemon.log());
        ASSERT_TRUE(where);
        query(*where, "CREATE DATABASE made_before_the_kill");
        ASSERT_EQ(::kill(daemon.pid(), SIGKILL), 0);
        EXPECT_EQ(daemon.wait_exit(), -SIGKILL);
        const std::string pgdata = (fs::path(data) / "pgdata").string();
        for (const auto until = clock::now() + 30s;
             clock::now() < until && !test::processes_mentioning(pgdata).empty();) {
            std::this_thread::sleep_for(50ms);
        }
        EXPECT_TRUE(test::processes_mentioning(pgdata).empty())
            << "postgres kept running after its daemon was killed";
    }
    daemon_process again(PGLEASED_PATH, {"--data-dir", data}, dir / "second.log");
    ASSERT_TRUE(again.wait_for_log("pgleased ready")) << again.log();
    const auto where = location_in(again.log());
    ASSERT_TRUE(where);
    EXPECT_EQ(
        query(*where, "SELECT count(*) FROM pg_database WHERE datname = 'made_before_the_kill'"),
        "1");
    ::kill(again.pid(), SIGTERM);
    EXPECT_EQ(again.wait_exit(), 0);
    fs::remove_all(dir);
}

TEST(pgleased, with_the_demo_config_it_builds_the_demo_template_and_warms_its_pool) {
    const fs::path dir = temp_dir("demo");
    daemon_process daemon(PGLEASED_PATH,
                          {"--config", PGLEASE_SOURCE_DIR "/deploy/demo/pglease.json", "--data-dir",
                           (dir / "data").string()},
                          dir / "pgleased.log");
    ASSERT_TRUE(daemon.wait_for_log("pgleased ready")) << daemon.log();
    ASSERT_TRUE(daemon.wait_for_log("template=demo version")) << daemon.log();
    const auto where = location_in(daemon.log());
    ASSERT_TRUE(where);
    std::string clones;
    for (const auto until = clock::now() + 60s; clock::now() < until;
         std::this_thread::sleep_for(100ms)) {
        clones = query(*where,
                       "SELECT count(*) FROM pg_database d JOIN pg_shdescription s ON s.objoid = "
                       "d.oid WHERE datname LIKE 'pglease\\_demo\\_%' AND NOT datistemplate AND "
                       "s.description LIKE 'pglease:v1 %'");
        if (clones == "4") {
            break;
        }
    }
    EXPECT_EQ(clones, "4") << "the demo pool did not warm to min_idle\n" << daemon.log();
    ::kill(daemon.pid(), SIGTERM);
    EXPECT_EQ(daemon.wait_exit(), 0) << daemon.log();
    fs::remove_all(dir);
}

TEST(pgleased, a_bad_config_file_is_refused_naming_the_key) {
    const fs::path dir = temp_dir("badconfig");
    std::ofstream(dir / "pglease.json")
        << R"({"templates": {"app": {"migrations": ".", "pool": {"min_idle": 9, "max_total": 2}}}})";
    daemon_process daemon(PGLEASED_PATH, {"--config", (dir / "pglease.json").string()},
                          dir / "out.log");
    const auto code = daemon.wait_exit();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 2);
    EXPECT_NE(daemon.log().find("templates.app.pool"), std::string::npos) << daemon.log();
    EXPECT_NE(daemon.log().find("min_idle"), std::string::npos) << daemon.log();
    fs::remove_all(dir);
}

TEST(pgleased, an_unreachable_backend_is_reported_at_start) {
    const fs::path dir = temp_dir("unreachable");
    const auto port = std::to_string(pick_free_port());
    std::ofstream(dir / "pglease.json")
        << R"({"backends": [{"name": "main", "url": "postgresql://admin@127.0.0.1:)" << port
        << R"(/postgres", "lease_password": "x"}], "templates": {"app": {"migrations": "."}}})";
    daemon_process daemon(PGLEASED_PATH, {"--config", (dir / "pglease.json").string()},
                          dir / "out.log");
    const auto code = daemon.wait_exit();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 1);
    EXPECT_NE(daemon.log().find("backends.main"), std::string::npos) << daemon.log();
    EXPECT_NE(daemon.log().find("Connection refused"), std::string::npos) << daemon.log();
    fs::remove_all(dir);
}

}  // namespace
}  // namespace pglease
