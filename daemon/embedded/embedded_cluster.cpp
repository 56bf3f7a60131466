#include "embedded/embedded_cluster.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "embedded/data_dir.hpp"
#include "embedded/server_binaries.hpp"
#include "embedded/tcp_port.hpp"
#include "pg/connection.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"
#include "process/child_process.hpp"
#include "process/os_user.hpp"

namespace pglease {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

struct shutdown_step {
    int signal;
    std::chrono::seconds patience;
};
// Retiring a postmaster an earlier daemon left: fast shutdown, then immediate.
constexpr std::array<shutdown_step, 2> retire_steps{{{SIGINT, 15s}, {SIGQUIT, 10s}}};
// Stopping ours: fast shutdown ends sessions and checkpoints; immediate and kill are fallbacks.
constexpr std::array<shutdown_step, 3> stop_steps{{{SIGINT, 30s}, {SIGQUIT, 10s}, {SIGKILL, 10s}}};

// Tries at a fresh port when the kernel's pick was taken before postgres could bind it.
constexpr int port_attempts = 3;

std::string read_file_from(const fs::path& file, std::uintmax_t offset) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return {};
    }
    in.seekg(static_cast<std::streamoff>(offset));
    std::stringstream text;
    text << in.rdbuf();
    std::string all = text.str();
    constexpr std::size_t keep = 4000;
    return all.size() > keep ? all.substr(all.size() - keep) : all;
}

// A whole decimal number, or 0 when `text` is not one.
int number_in(const std::string& text) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc() && end == text.data() + text.size() ? value : 0;
}

std::string first_line(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

// A postmaster still alive on `pgdata` (its pid file names it and its command line names the
// directory), or 0.
int live_postmaster(const fs::path& pgdata) {
    const std::string pid_text = first_line(pgdata / "postmaster.pid");
    const int pid = number_in(pid_text);
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) {
        return 0;
    }
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::stringstream text;
    text << cmdline.rdbuf();
    return text.str().find(pgdata.string()) != std::string::npos ? pid : 0;
}

asio::awaitable<void> sleep_for(clock::duration how_long) {
    asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
    co_await timer.async_wait(asio::use_awaitable);
}

void make_dir(const fs::path& dir, fs::perms mode, const std::optional<os_user>& owner) {
    if (fs::create_directories(dir)) {
        fs::permissions(dir, mode);
        give_to_user(dir, owner);
    }
}

}  // namespace

struct embedded_cluster::state {
    data_dir_choice where;
    std::optional<data_dir_lock> lock;
    server_binaries binaries;
    std::optional<os_user> run_as;
    fs::path socket_dir;
    bool own_temp_socket_dir = false;
    std::uint16_t port = 0;
    std::optional<server_process> server;
    bool stopped = false;

    fs::path pgdata() const { return where.path / "pgdata"; }
    fs::path log_file() const { return where.path / "postgres.log"; }

    child_options child() const {
        child_options options;
        options.working_dir = where.path;
        options.run_as = run_as;
        return options;
    }

    std::string conninfo(const std::string& database) const {
        const std::string port_text = std::to_string(port);
        return pg::make_conninfo({{"host", socket_dir.string()},
                                  {"port", port_text},
                                  {"user", superuser},
                                  {"dbname", database},
                                  {"application_name", "pglease"}});
    }

    asio::awaitable<void> initdb_if_needed(clock::time_point deadline) {
        const fs::path pgdata = this->pgdata();
        if (fs::exists(pgdata / "PG_VERSION")) {
            const int major = number_in(first_line(pgdata / "PG_VERSION"));
            if (major != binaries.major_version) {
                throw std::runtime_error(pgdata.string() + " was made by PostgreSQL " +
                                         std::to_string(major) + " but the server found is " +
                                         binaries.version + " (" + binaries.bin_dir.string() +
                                         "); remove the directory or choose another --data-dir");
            }
            co_return;
        }
        if (fs::exists(pgdata) && !fs::is_empty(pgdata)) {
            throw std::runtime_error(pgdata.string() +
                                     " exists but is not a PostgreSQL data directory (no "
                                     "PG_VERSION); remove it or choose another --data-dir");
        }
        make_dir(pgdata, fs::perms::owner_all, run_as);
        spdlog::info("initializing PostgreSQL {} cluster in {}", binaries.version, pgdata.string());
        const auto remaining =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        std::vector<std::string> args{"--pgdata=" + pgdata.string(),
                                      std::string("--username=") + superuser,
                                      "--encoding=UTF8",
                                      "--locale=C",
                                      "--auth-local=trust",
                                      "--auth-host=scram-sha-256",
                                      "--no-sync",
                                      "--no-instructions"};
        auto answer = co_await run_command(binaries.initdb(), std::move(args), child(),
                                           std::max(remaining, std::chrono::milliseconds(1)));
        if (answer.exit_code != 0) {
            std::error_code ignored;
            fs::remove_all(pgdata, ignored);
            throw std::runtime_error("initdb failed (exit " + std::to_string(answer.exit_code) +
                                     "): " + answer.output);
        }
    }

    // The unix socket lives in run/ unless that path is too long for sockaddr_un.
    void prepare_socket_dir() {
        socket_dir = where.path / "run";
        const std::size_t longest = socket_dir.string().size() + sizeof("/.s.PGSQL.65535.lock");
        if (longest >= sizeof(sockaddr_un::sun_path)) {
            std::string pattern = (fs::temp_directory_path() / "pglease-XXXXXX").string();
            if (::mkdtemp(pattern.data()) == nullptr) {
                throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
            }
            socket_dir = pattern;
            own_temp_socket_dir = true;
            give_to_user(socket_dir, run_as);
            return;
        }
        make_dir(socket_dir, fs::perms::owner_all, run_as);
    }

    // A postmaster whose daemon died may still be shutting down (it got the parent-death
    // signal); one that outlived it otherwise is shut down, since the lock says no daemon owns it.
    asio::awaitable<void> retire_orphaned_postmaster() {
        int pid = live_postmaster(pgdata());
        if (pid == 0) {
            co_return;
        }
        spdlog::warn("postgres pid={} left running on {} by an earlier pgleased; shutting it down",
                     pid, pgdata().string());
        for (const auto& [signal, patience] : retire_steps) {
            ::kill(pid, signal);
            for (auto until = clock::now() + patience; clock::now() < until;) {
                if (live_postmaster(pgdata()) == 0) {
                    co_return;
                }
                co_await sleep_for(50ms);
            }
        }
        throw std::runtime_error("postgres pid=" + std::to_string(pid) + " still runs on " +
                                 pgdata().string() + " and would not stop; stop it by hand");
    }

    std::vector<std::string> server_args(int max_connections) const {
        std::vector<std::string> args{"-D", pgdata().string(), "-p", std::to_string(port)};
        const std::vector<std::pair<std::string, std::string>> settings{
            {"listen_addresses", "127.0.0.1"},
            {"unix_socket_directories", socket_dir.string()},
            {"unix_socket_permissions", "0700"},
            {"max_connections", std::to_string(max_connections)},
            // Throwaway test data: nothing here needs to survive a machine crash.
            {"fsync", "off"},
            {"synchronous_commit", "off"},
            {"full_page_writes", "off"},
            {"wal_level", "minimal"},
            {"max_wal_senders", "0"},
            {"max_wal_size", "1GB"},
            // A reset in place reads the WAL written since the clone's last reset, up to 64 MB
            // (pool/clone_reset.cpp): checkpoints, which every FILE_COPY clone forces, keep it.
            {"wal_keep_size", "128MB"},
            {"checkpoint_timeout", "30min"},
            {"logging_collector", "off"},
        };
        for (const auto& [name, value] : settings) {
            args.emplace_back("-c");
            args.push_back(name + "=" + value);
        }
        // Loaded once by the postmaster rather than by every backend that first runs a trigger
        // or function in PL/pgSQL: each test's connection starts that much faster.
        if (std::error_code ec;
            fs::exists(binaries.bin_dir.parent_path() / "lib" / "plpgsql.so", ec)) {
            args.emplace_back("-c");
            args.emplace_back("shared_preload_libraries=plpgsql");
        }
        return args;
    }

    enum class startup { ready, exited, timed_out };

    asio::awaitable<startup> wait_until_ready(clock::time_point deadline) {
        while (clock::now() < deadline) {
            if (!server->running()) {
                co_return startup::exited;
            }
            try {
                auto probe = co_await pg::connection::connect(conninfo("postgres"), 2s);
                co_await probe.exec("SELECT 1", 2s);
                co_return startup::ready;
            } catch (const pg::pg_error&) {
                // Not accepting connections yet.
            }
            co_await sleep_for(30ms);
        }
        co_return startup::timed_out;
    }

    asio::awaitable<void> shut_down() {
        if (stopped || !server) {
            co_return;
        }
        stopped = true;
        for (const auto& [signal, patience] : stop_steps) {
            server->send_signal(signal);
            if (co_await server->wait_exit(patience)) {
                break;
            }
            spdlog::warn("postgres pid={} did not exit within {}s of signal {}", server->pid(),
                         patience.count(), signal);
        }
        remove_temp_socket_dir();
        spdlog::info("embedded PostgreSQL in {} stopped", where.path.string());
    }

    void remove_temp_socket_dir() noexcept {
        if (own_temp_socket_dir) {
            std::error_code ignored;
            fs::remove_all(socket_dir, ignored);
            own_temp_socket_dir = false;
        }
    }
};

embedded_cluster::embedded_cluster(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}

embedded_cluster::~embedded_cluster() {
    if (state_ && !state_->stopped && state_->server && state_->server->running()) {
        // No loop to wait on here: ask for an immediate shutdown and let it finish on its own.
        state_->server->send_signal(SIGQUIT);
        state_->server->detach();
    }
    if (state_) {
        state_->remove_temp_socket_dir();
    }
}

asio::awaitable<std::unique_ptr<embedded_cluster>> embedded_cluster::start(
    embedded_cluster_options options) {
    const auto deadline = clock::now() + options.start_timeout;
    auto s = std::make_unique<state>();
    s->where = choose_data_dir(options.data_dir, "/dev/shm", probe_storage("/dev/shm"), ::geteuid(),
                               ".pglease");
    s->where.path = fs::absolute(s->where.path).lexically_normal();
    if (options.data_dir) {
        // A given directory may be on RAM-backed storage too; say so in the log.
        fs::path existing = s->where.path;
        while (!fs::exists(existing) && existing != existing.parent_path()) {
            existing = existing.parent_path();
        }
        s->where.ram_backed = probe_storage(existing).ram_backed;
    }

    if (running_as_root()) {
        s->run_as = find_os_user(options.run_as);
        if (!s->run_as) {
            throw std::runtime_error("PostgreSQL refuses to run as root and there is no OS user '" +
                                     options.run_as +
                                     "' to run it as; create it (useradd --system " +
                                     options.run_as + ") or pass --run-as USER");
        }
        if (s->run_as->uid == 0) {
            throw std::runtime_error("--run-as " + options.run_as +
                                     " is root; PostgreSQL needs an unprivileged account");
        }
    }
    make_dir(s->where.path,
             fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                 fs::perms::others_read | fs::perms::others_exec,
             std::nullopt);
    s->lock.emplace(s->where.path / "pgleased.lock");
    s->binaries = co_await find_server_binaries(options.bin_dir);
    co_await s->initdb_if_needed(deadline);
    s->prepare_socket_dir();
    co_await s->retire_orphaned_postmaster();

    // Leases handed out before a restart carry the port in their DSNs: keep it if it is free.
    const fs::path port_file = s->where.path / "port";
    const int remembered = number_in(first_line(port_file));
    for (int attempt = 1;; ++attempt) {
        if (options.port.value_or(0) != 0) {
            s->port = *options.port;
        } else if (attempt == 1 && remembered > 0 && remembered < 65536) {
            s->port = static_cast<std::uint16_t>(remembered);
        } else {
            s->port = pick_free_port();
        }
        std::error_code ec;
        const auto log_offset = fs::exists(s->log_file()) ? fs::file_size(s->log_file(), ec) : 0;
        child_options child = s->child();
        // If the daemon dies, its cluster shuts down instead of lingering without an owner.
        child.parent_death_signal = SIGINT;
        s->server.emplace(co_await asio::this_coro::executor, s->binaries.postgres(),
                          s->server_args(options.max_connections), s->log_file(), child);
        const auto outcome = co_await s->wait_until_ready(deadline);
        if (outcome == state::startup::ready) {
            break;
        }
        const std::string log = read_file_from(s->log_file(), log_offset);
        if (outcome == state::startup::timed_out) {
            co_await s->shut_down();
            throw std::runtime_error("postgres did not accept connections within " +
                                     std::to_string(options.start_timeout.count()) +
                                     "s; its log says: " + log);
        }
        const bool port_taken =
            log.find("could not bind") != std::string::npos ||
            log.find("could not create any TCP/IP sockets") != std::string::npos;
        if (port_taken && !options.port && attempt < port_attempts) {
            spdlog::info("port {} was taken before postgres could bind it; trying another",
                         s->port);
            continue;
        }
        s->remove_temp_socket_dir();
        throw std::runtime_error("postgres exited during startup; its log (" +
                                 s->log_file().string() + ") says: " + log);
    }
    std::ofstream(port_file, std::ios::trunc) << s->port << "\n";
    spdlog::info("embedded PostgreSQL {} ready: socket={} port={} data_dir={} ({}; {}) pid={}",
                 s->binaries.version, s->socket_dir.string(), s->port, s->where.path.string(),
                 s->where.ram_backed ? "RAM-backed" : "on disk", s->where.reason, s->server->pid());
    co_return std::unique_ptr<embedded_cluster>(new embedded_cluster(std::move(s)));
}

asio::awaitable<void> embedded_cluster::stop() {
    co_await state_->shut_down();
}

const fs::path& embedded_cluster::data_dir() const noexcept {
    return state_->where.path;
}
fs::path embedded_cluster::pgdata() const {
    return state_->pgdata();
}
const fs::path& embedded_cluster::socket_dir() const noexcept {
    return state_->socket_dir;
}
std::uint16_t embedded_cluster::port() const noexcept {
    return state_->port;
}
bool embedded_cluster::ram_backed() const noexcept {
    return state_->where.ram_backed;
}
const std::string& embedded_cluster::version() const noexcept {
    return state_->binaries.version;
}
int embedded_cluster::postmaster_pid() const noexcept {
    return state_->server ? state_->server->pid() : 0;
}
std::string embedded_cluster::admin_conninfo(const std::string& database) const {
    return state_->conninfo(database);
}

}  // namespace pglease
