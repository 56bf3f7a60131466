#include "bench/scenarios.hpp"

#include <csignal>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "embedded/embedded_cluster.hpp"
#include "hashing/scram.hpp"
#include "pglease/client.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/run_async.hpp"

namespace pglease::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* worker_role = "bench_worker";
constexpr const char* worker_password = "bench";

std::string tail_of(const std::string& log) {
    constexpr std::size_t keep = 2000;
    return log.size() > keep ? log.substr(log.size() - keep) : log;
}

}  // namespace

// ---- baseline_cluster ----

struct baseline_cluster::state {
    boost::asio::io_context io;
    std::unique_ptr<embedded_cluster> cluster;
};

baseline_cluster::baseline_cluster(const fs::path& data_dir, const template_spec& spec)
    : state_(std::make_unique<state>()), spec_(spec) {
    embedded_cluster_options options;
    options.data_dir = data_dir;
    state_->cluster = test::run_async(
        state_->io, [&] { return embedded_cluster::start(options); }, 300s);
    auto admin = connect(admin_conninfo("postgres"));
    // Logins cost what a lease's login costs: the same cheap secret pglease gives its role.
    exec(admin.get(), std::string("CREATE ROLE ") + worker_role + " LOGIN CREATEDB PASSWORD '" +
                          scram_sha256_secret(worker_password, generated_password_iterations) +
                          "'");
    exec(admin.get(),
         std::string("CREATE DATABASE ") + template_database + " OWNER " + worker_role);
    exec(admin.get(), std::string("CREATE DATABASE ") + shared_database + " OWNER " + worker_role);
    {
        // Built as its owner, one transaction per file, as pglease builds a template.
        auto owner = connect(admin_conninfo(template_database) + " user=" + worker_role);
        for (const auto& [name, sql] : spec.migrations) {
            exec(owner.get(), sql);
        }
    }
    exec(admin.get(), std::string("ALTER DATABASE ") + template_database +
                          " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false");
}

baseline_cluster::~baseline_cluster() {
    try {
        test::run_async(
            state_->io, [this] { return state_->cluster->stop(); }, 120s);
    } catch (const std::exception&) {
        // The cluster's destructor stops it immediately.
    }
}

std::string baseline_cluster::admin_conninfo(const std::string& database) const {
    return state_->cluster->admin_conninfo(database);
}

void baseline_cluster::use_default_password_secret() const {
    auto admin = connect(admin_conninfo("postgres"));
    exec(admin.get(),
         std::string("ALTER ROLE ") + worker_role + " PASSWORD '" + worker_password + "'");
}

std::string baseline_cluster::worker_conninfo(const std::string& database) const {
    return "host=127.0.0.1 port=" + std::to_string(state_->cluster->port()) +
           " user=" + worker_role + " password=" + worker_password + " dbname=" + database;
}

std::string baseline_cluster::clone_statement(const std::string& name) const {
    return "CREATE DATABASE " + name + " TEMPLATE " + template_database + " STRATEGY FILE_COPY";
}

// ---- pglease_daemon ----

struct pglease_daemon::state {
    std::optional<test::daemon_process> process;
    bool stopped = false;
};

pglease_daemon::pglease_daemon(const options& o) : state_(std::make_unique<state>()) {
    state_->process.emplace(
        o.program,
        std::vector<std::string>{"--config", o.config.string(), "--data-dir", o.data_dir.string(),
                                 "--listen", "127.0.0.1:0", "--max-parallel-clones",
                                 std::to_string(o.max_parallel_clones), "--max-databases", "1000"},
        o.log);
    if (!state_->process->wait_for_log("http listening on", 300s)) {
        throw std::runtime_error("pgleased did not start:\n" + tail_of(state_->process->log()));
    }
    const auto port = test::http_port_in(state_->process->log());
    if (!port) {
        throw std::runtime_error("pgleased logged no port:\n" + tail_of(state_->process->log()));
    }
    port_ = *port;
    url_ = "http://127.0.0.1:" + std::to_string(port_);
}

pglease_daemon::~pglease_daemon() {
    try {
        stop();
    } catch (const std::exception&) {
        // daemon_process kills it.
    }
}

pid_t pglease_daemon::pid() const noexcept {
    return state_->process->pid();
}

int pglease_daemon::idle(const std::string& template_name) const {
    client::client http(url_);
    return http.template_status(template_name).idle;
}

pglease_daemon::operation_totals pglease_daemon::operations() const {
    test::http_client http("127.0.0.1", port_);
    std::istringstream text(http.get("/metrics").body);
    operation_totals totals;
    double drops_within_100ms = 0;
    for (std::string line; std::getline(text, line);) {
        const auto space = line.rfind(' ');
        if (line.starts_with('#') || space == std::string::npos) {
            continue;
        }
        const double value = std::stod(line.substr(space + 1));
        const auto name = line.substr(0, line.find_first_of("{ "));
        if (name == "pglease_clone_duration_seconds_sum") {
            totals.clone_seconds += value;
        } else if (name == "pglease_clone_duration_seconds_count") {
            totals.clones += value;
        } else if (name == "pglease_drop_duration_seconds_sum") {
            totals.drop_seconds += value;
        } else if (name == "pglease_drop_duration_seconds_count") {
            totals.drops += value;
        } else if (name == "pglease_reset_duration_seconds_sum") {
            totals.reset_seconds += value;
        } else if (name == "pglease_reset_duration_seconds_count") {
            totals.resets += value;
        } else if (name == "pglease_resets_total" &&
                   line.find("result=\"reclone\"") != std::string::npos) {
            totals.reclones += value;
        } else if (name == "pglease_drop_duration_seconds_bucket" &&
                   line.find("le=\"0.1\"") != std::string::npos) {
            drops_within_100ms += value;
        }
    }
    totals.slow_drops = totals.drops - drops_within_100ms;
    return totals;
}

void pglease_daemon::wait_ready(std::chrono::seconds limit) const {
    test::http_client http("127.0.0.1", port_);
    for (const auto until = clock::now() + limit; clock::now() < until;
         std::this_thread::sleep_for(20ms)) {
        if (http.get("/readyz").status == 200) {
            return;
        }
    }
    throw std::runtime_error("pgleased at " + url_ + " did not become ready:\n" +
                             tail_of(state_->process->log()));
}

void pglease_daemon::wait_for_idle(const std::string& template_name, int idle,
                                   std::chrono::seconds limit) const {
    client::client http(url_);
    for (const auto until = clock::now() + limit; clock::now() < until;) {
        const auto status = http.template_status(template_name);
        if (status.state == "failed") {
            throw std::runtime_error("template " + template_name + " failed: " + status.error);
        }
        if (status.state == "ready" && status.idle >= idle) {
            return;
        }
        std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("template " + template_name + " did not reach " +
                             std::to_string(idle) + " idle clones in time:\n" +
                             tail_of(state_->process->log()));
}

void pglease_daemon::wait_settled(const std::string& template_name, bool exact,
                                  std::chrono::seconds limit) const {
    client::client http(url_);
    for (const auto until = clock::now() + limit; clock::now() < until;) {
        const auto s = http.template_status(template_name);
        const bool idle_ok = exact ? s.idle == s.min_idle : s.idle >= s.min_idle;
        if (idle_ok && s.leased == 0 && s.creating == 0 && s.dropping == 0 && s.resetting == 0) {
            return;
        }
        std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("the pool of " + template_name + " did not settle in time");
}

void pglease_daemon::stop() {
    if (state_->stopped) {
        return;
    }
    state_->stopped = true;
    ::kill(state_->process->pid(), SIGTERM);
    const auto status = state_->process->wait_exit(120s);
    if (status != 0) {
        throw std::runtime_error("pgleased did not exit cleanly:\n" +
                                 tail_of(state_->process->log()));
    }
}

// ---- workers ----

namespace {

/// The test body, then the test's own work with its connection open.
void run_test(PGconn* conn, bool rolled_back, std::chrono::milliseconds work) {
    run_test_body(conn, rolled_back);
    if (work.count() > 0) {
        std::this_thread::sleep_for(work);
    }
}

client::lease_options lease_options_for_bench() {
    client::lease_options options;
    options.ttl = 600s;
    options.wait = 120s;
    options.owner = "pglease-bench";
    return options;
}

class pglease_worker_impl final : public worker {
  public:
    pglease_worker_impl(const std::string& url, std::string template_name, give_back mode,
                        std::chrono::milliseconds work)
        : http_(url), template_name_(std::move(template_name)), mode_(mode), work_(work) {}

    sample iterate(std::size_t /*index*/) override {
        const auto asked = clock::now();
        const auto lease = http_.acquire(template_name_, options_);
        const auto leased = clock::now();
        try {
            auto conn = connect(lease.dsn);
            const auto connected = clock::now();
            run_test(conn.get(), mode_ == give_back::reuse, work_);
            conn.reset();  // as a test does: its connections close before it hands back
            const auto releasing = clock::now();
            http_.release(lease.id, mode_ == give_back::reuse ? client::release_mode::reuse
                                                              : client::release_mode::recycle);
            return {ms_between(asked, connected), ms_between(asked, leased),
                    ms_between(releasing, clock::now())};
        } catch (const std::exception&) {
            try {
                http_.release(lease.id, client::release_mode::recycle);
            } catch (const std::exception&) {
                // Released already, or the daemon is gone: the first failure is what counts.
            }
            throw;
        }
    }

  private:
    client::client http_;
    std::string template_name_;
    give_back mode_;
    std::chrono::milliseconds work_;
    client::lease_options options_ = lease_options_for_bench();
};

class sticky_reset_worker_impl final : public worker {
  public:
    sticky_reset_worker_impl(const std::string& url, const std::string& template_name,
                             std::chrono::milliseconds work)
        : http_(url), lease_(http_.acquire(template_name, lease_options_for_bench())), work_(work) {
        try {
            conn_ = connect(lease_.dsn);
        } catch (const std::exception&) {
            http_.release(lease_.id);
            throw;
        }
    }
    sticky_reset_worker_impl(const sticky_reset_worker_impl&) = delete;
    sticky_reset_worker_impl& operator=(const sticky_reset_worker_impl&) = delete;
    ~sticky_reset_worker_impl() override {
        conn_.reset();
        try {
            http_.release(lease_.id);
        } catch (const std::exception&) {
            // The daemon is gone; the lease's TTL ends it.
        }
    }

    sample iterate(std::size_t /*index*/) override {
        const auto asked = clock::now();
        const auto answer = http_.reset(lease_.id);
        if (answer.result == "reclone") {
            // Cloned again under its name: the sessions on it were ended, as a test's fixture
            // finds when it asks again.
            conn_ = connect(lease_.dsn);
        } else if (answer.result != "reset") {
            throw std::runtime_error("the reset answered " + answer.result + ": " + answer.reason);
        }
        const auto fresh = clock::now();
        run_test(conn_.get(), false, work_);
        const double ms = ms_between(asked, fresh);
        // A reclone (the reset found too much to read, or a change it does not undo) is as
        // fresh, and counted: these runs measure resets. Its time includes the new connection.
        return {ms, ms, std::nullopt, answer.result == "reclone"};
    }

  private:
    client::client http_;
    client::lease_data lease_;
    std::chrono::milliseconds work_;
    pg_connection conn_{nullptr, &PQfinish};
};

class lease_cycle_worker_impl final : public worker {
  public:
    lease_cycle_worker_impl(const std::string& url, std::string template_name, int recycle_every)
        : http_(url),
          template_name_(std::move(template_name)),
          recycle_every_(static_cast<std::size_t>(recycle_every)) {}

    sample iterate(std::size_t index) override {
        const auto asked = clock::now();
        const auto lease = http_.acquire(template_name_, options_);
        const auto leased = clock::now();
        http_.release(lease.id, index % recycle_every_ == 0 ? client::release_mode::recycle
                                                            : client::release_mode::reuse);
        return {ms_between(asked, leased), ms_between(asked, leased),
                ms_between(leased, clock::now())};
    }

  private:
    client::client http_;
    std::string template_name_;
    std::size_t recycle_every_;
    client::lease_options options_ = lease_options_for_bench();
};

class clone_per_test_worker_impl final : public worker {
  public:
    clone_per_test_worker_impl(const baseline_server& server, int index,
                               std::chrono::milliseconds work)
        : server_(server),
          admin_(connect(server.worker_conninfo("postgres"))),
          prefix_("bench_clone_" + std::to_string(index) + "_"),
          work_(work) {}

    sample iterate(std::size_t index) override {
        const std::string name = prefix_ + std::to_string(index);
        const auto asked = clock::now();
        exec(admin_.get(), server_.clone_statement(name));
        auto conn = connect(server_.worker_conninfo(name));
        const auto connected = clock::now();
        run_test(conn.get(), false, work_);
        conn.reset();
        exec(admin_.get(), "DROP DATABASE " + name);
        return {ms_between(asked, connected), std::nullopt, std::nullopt};
    }

  private:
    const baseline_server& server_;
    pg_connection admin_;
    std::string prefix_;
    std::chrono::milliseconds work_;
};

class raw_clone_worker_impl final : public worker {
  public:
    raw_clone_worker_impl(const baseline_cluster& cluster, int index)
        : cluster_(cluster),
          admin_(connect(cluster.admin_conninfo("postgres"))),
          prefix_("bench_raw_" + std::to_string(index) + "_") {}

    sample iterate(std::size_t index) override {
        const std::string name = prefix_ + std::to_string(index);
        const auto asked = clock::now();
        exec(admin_.get(), cluster_.clone_statement(name));
        const auto cloned = clock::now();
        exec(admin_.get(), "DROP DATABASE " + name);
        return {ms_between(asked, cloned), std::nullopt, std::nullopt};
    }

  private:
    const baseline_cluster& cluster_;
    pg_connection admin_;
    std::string prefix_;
};

class schema_per_test_worker_impl final : public worker {
  public:
    schema_per_test_worker_impl(const baseline_server& server, int index,
                                std::chrono::milliseconds work)
        : server_(server), prefix_("bench_s" + std::to_string(index) + "_"), work_(work) {}

    sample iterate(std::size_t index) override {
        const std::string schema = prefix_ + std::to_string(index);
        const auto asked = clock::now();
        auto conn = connect(server_.worker_conninfo(baseline_server::shared_database));
        exec(conn.get(), "CREATE SCHEMA " + schema);
        exec(conn.get(), "SET search_path TO " + schema);
        for (const auto& [name, sql] : server_.spec().migrations) {
            exec(conn.get(), sql);
        }
        const auto ready = clock::now();
        run_test(conn.get(), false, work_);
        exec(conn.get(), "DROP SCHEMA " + schema + " CASCADE");
        return {ms_between(asked, ready), std::nullopt, std::nullopt};
    }

  private:
    const baseline_server& server_;
    std::string prefix_;
    std::chrono::milliseconds work_;
};

class connect_only_worker_impl final : public worker {
  public:
    explicit connect_only_worker_impl(const baseline_cluster& cluster)
        : conninfo_(cluster.worker_conninfo(baseline_cluster::shared_database)) {}

    sample iterate(std::size_t /*index*/) override {
        const auto asked = clock::now();
        auto conn = connect(conninfo_);
        return {ms_between(asked, clock::now()), std::nullopt, std::nullopt};
    }

  private:
    std::string conninfo_;
};

}  // namespace

std::unique_ptr<worker> pglease_worker(const std::string& url, const std::string& template_name,
                                       give_back mode, std::chrono::milliseconds work) {
    return std::make_unique<pglease_worker_impl>(url, template_name, mode, work);
}

std::unique_ptr<worker> sticky_reset_worker(const std::string& url,
                                            const std::string& template_name,
                                            std::chrono::milliseconds work) {
    return std::make_unique<sticky_reset_worker_impl>(url, template_name, work);
}

std::unique_ptr<worker> lease_cycle_worker(const std::string& url, const std::string& template_name,
                                           int recycle_every) {
    return std::make_unique<lease_cycle_worker_impl>(url, template_name, recycle_every);
}

std::unique_ptr<worker> clone_per_test_worker(const baseline_server& server, int index,
                                              std::chrono::milliseconds work) {
    return std::make_unique<clone_per_test_worker_impl>(server, index, work);
}

std::unique_ptr<worker> raw_clone_worker(const baseline_cluster& cluster, int index) {
    return std::make_unique<raw_clone_worker_impl>(cluster, index);
}

std::unique_ptr<worker> schema_per_test_worker(const baseline_server& server, int index,
                                               std::chrono::milliseconds work) {
    return std::make_unique<schema_per_test_worker_impl>(server, index, work);
}

std::unique_ptr<worker> connect_only_worker(const baseline_cluster& cluster) {
    return std::make_unique<connect_only_worker_impl>(cluster);
}

}  // namespace pglease::bench
