// The shard's life: taking the backend, supervising it, losing and regaining it.
#include "broker/backend_shard.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "hashing/scram.hpp"
#include "logging.hpp"
#include "pg/conninfo.hpp"
#include "pg/pg_error.hpp"

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;

backend_shard::backend_shard(asio::any_io_executor executor, backend_endpoint endpoint,
                             shard_config config, broker_metrics& metrics)
    : executor_(std::move(executor)),
      endpoint_(std::move(endpoint)),
      config_(std::move(config)),
      metrics_(metrics),
      deadline_timer_(executor_),
      watch_timer_(executor_) {
    // Clones and drops, plus room for template builds, which must not wait behind them.
    operations_ = std::make_unique<pg::connection_pool>(
        endpoint_.admin_conninfo, static_cast<std::size_t>(endpoint_.max_parallel_clones) + 2, 30s);
    // Comments on the lease path get their own connections: a slow CREATE DATABASE never delays
    // a lease of an idle clone. Their commits reach the server's WAL before the answer, whatever
    // the server's default (the embedded cluster's is off): a lease lost in a backend crash
    // would leave its clone looking idle, for the next worker to be handed too.
    catalog_ = std::make_unique<pg::connection_pool>(
        pg::with_session_setting(endpoint_.admin_conninfo, "synchronous_commit", "local"), 2, 10s);
    for (const auto& [name, settings] : config_.templates) {
        auto& entry = templates_[name];
        entry.name = name;
        entry.settings = settings;
        metrics_.of(name);  // its series exist, at zero, from the start
    }
}

backend_shard::~backend_shard() = default;

asio::awaitable<void> backend_shard::start() {
    co_await take_lock();
    co_await ensure_lease_role();
    co_await reconcile();
    up_ = true;
    catalog_read_ = true;
    spdlog::info("backend={} up: {} templates, {} leases adopted", endpoint_.name,
                 config_.templates.size(), leases_.size());
    const auto spawn = [this](asio::awaitable<void> task, const char* what) {
        ++background_tasks_;
        asio::co_spawn(executor_, std::move(task), [this, what](const std::exception_ptr& failure) {
            --background_tasks_;
            if (failure) {
                try {
                    std::rethrow_exception(failure);
                } catch (const std::exception& e) {
                    spdlog::error("backend={} {} stopped: {}", endpoint_.name, what, e.what());
                }
            }
        });
    };
    spawn(run_deadlines(), "expiry timer");
    spawn(supervise(), "supervisor");
    co_await watch_sources();
    schedule();
}

asio::awaitable<void> backend_shard::stop() {
    stopping_ = true;
    deadline_timer_.cancel();
    watch_timer_.cancel();
    for (auto& [name, entry] : templates_) {
        for (waiter* w : entry.waiters) {
            w->give_up = true;
            w->wakeup.cancel();
        }
        for (waiter* w : entry.build_waiters) {
            w->wakeup.cancel();
        }
    }
    // Background work holds pointers into this shard: wait until all of it has ended.
    for (int i = 0; background_tasks_ > 0 && i < 3000; ++i) {
        co_await sleep_for(10ms);
    }
    if (background_tasks_ > 0) {
        spdlog::warn("backend={} {} background tasks still running at stop", endpoint_.name,
                     background_tasks_);
    }
    if (lock_connection_) {
        lock_connection_->close();
    }
    up_ = false;
}

asio::awaitable<void> backend_shard::sleep_for(std::chrono::steady_clock::duration how_long) {
    asio::steady_timer timer(executor_, how_long);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> backend_shard::take_lock() {
    bool announced = false;
    for (;;) {
        if (!lock_connection_ || !lock_connection_->usable()) {
            lock_connection_ = co_await pg::connection::connect(endpoint_.admin_conninfo, 10s);
        }
        // One broker per backend and prefix: the lock lives as long as this session.
        auto taken = co_await lock_connection_->query(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", "pglease:" + config_.prefix);
        standby_ = taken.value(0, 0) != "t";
        if (!standby_) {
            if (announced) {
                spdlog::info("backend={} the other broker let go; taking over", endpoint_.name);
            }
            co_return;
        }
        if (!announced) {
            spdlog::warn(
                "backend={} another pglease broker holds this backend (prefix {}); waiting as "
                "standby",
                endpoint_.name, config_.prefix);
            announced = true;
        }
        if (stopping_) {
            throw std::runtime_error("stopped while waiting for the backend's lock");
        }
        co_await sleep_for(1s);
    }
}

asio::awaitable<void> backend_shard::ensure_lease_role() {
    auto conn = co_await catalog_->acquire();
    const std::string role = conn->quote_identifier(endpoint_.lease_role);
    auto exists =
        co_await conn->query("SELECT 1 FROM pg_roles WHERE rolname = $1", endpoint_.lease_role);
    const std::string password =
        endpoint_.lease_password.empty() ? ""
        : endpoint_.lease_password_generated
            ? " PASSWORD " + conn->quote_literal(scram_sha256_secret(endpoint_.lease_password,
                                                                     generated_password_iterations))
            : " PASSWORD " + conn->quote_literal(endpoint_.lease_password);
    if (exists.rows() == 0) {
        co_await conn->exec("CREATE ROLE " + role + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE" +
                            password);
        spdlog::info("backend={} created lease role {}", endpoint_.name, endpoint_.lease_role);
    } else if (!password.empty()) {
        try {
            co_await conn->exec("ALTER ROLE " + role + " LOGIN" + password);
        } catch (const pg::server_error& e) {
            spdlog::warn("backend={} cannot set the password of lease role {}: {}", endpoint_.name,
                         endpoint_.lease_role, e.what());
        }
    }
    // A non-superuser admin must be a member of the lease role to create databases it owns and to
    // run migrations as it.
    auto super = co_await conn->exec("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
    if (super.value(0, 0) == "t") {
        co_return;
    }
    co_await conn->exec("GRANT " + role + " TO CURRENT_USER");
    // The same holds for the roles that templates of their own hand out (a database source's
    // owner): they exist already, and the admin may lack the right to grant them.
    for (const auto& [name, settings] : config_.templates) {
        if (settings.lease_role.empty() || settings.lease_role == endpoint_.lease_role) {
            continue;
        }
        auto member = co_await conn->query(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1",
            settings.lease_role);
        if (member.rows() == 0 || member.value(0, 0) == "t") {
            continue;
        }
        try {
            co_await conn->exec("GRANT " + conn->quote_identifier(settings.lease_role) +
                                " TO CURRENT_USER");
        } catch (const pg::server_error& e) {
            spdlog::warn(
                "backend={} template={} cannot make the admin a member of lease role {}, so its "
                "clones cannot be given to that role: {}",
                endpoint_.name, name, settings.lease_role, e.what());
        }
    }
}

asio::awaitable<void> backend_shard::supervise() {
    while (!stopping_) {
        watch_timer_.expires_after(config_.watch_interval);
        boost::system::error_code ignored;
        co_await watch_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (stopping_) {
            co_return;
        }
        bool alive = true;
        try {
            co_await lock_connection_->exec("SELECT 1", 10s);
        } catch (const pg::pg_error& e) {
            warn_limited("backend_lost backend=" + endpoint_.name, "backend={} lost: {}",
                         endpoint_.name, e.what());
            alive = false;
        }
        if (alive) {
            co_await watch_sources();
            continue;
        }
        // Sessions are gone and with them the lock: forget memory and rebuild it from the catalog.
        up_ = false;
        forget_state();
        for (int attempt = 0; !stopping_; ++attempt) {
            try {
                co_await take_lock();
                co_await ensure_lease_role();
                co_await reconcile();
                up_ = true;
                spdlog::info("backend={} back: {} leases adopted", endpoint_.name, leases_.size());
                deadline_timer_.cancel();
                co_await watch_sources();
                schedule();
                break;
            } catch (const std::exception& e) {
                warn_limited("backend_unreachable backend=" + endpoint_.name,
                             "backend={} still unreachable: {}", endpoint_.name, e.what());
            }
            co_await sleep_for(1s);
        }
    }
}

void backend_shard::forget_state() {
    ++generation_;
    for (auto& [name, entry] : templates_) {
        entry.current.reset();
        entry.draining.clear();
        entry.building = false;
        entry.source_stamp.clear();
        entry.wanted_fingerprint.clear();
        entry.build.reset();
        entry.surplus_since.reset();
        entry.trim_check_pending = false;  // its deadline goes with the others below
        for (waiter* w : entry.build_waiters) {
            w->wakeup.cancel();
        }
    }
    leases_.clear();
    kept_.clear();
    deadlines_.clear();
    drop_queue_.clear();
    template_drop_queue_.clear();
    operations_in_flight_ = 0;
    operations_->clear_idle();
    catalog_->clear_idle();
}

}  // namespace pglease
