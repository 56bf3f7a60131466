// The one deadline queue and its one timer, on a real event loop, without PostgreSQL.
#include "leases/deadline_queue.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

namespace pglease {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;

struct fired {
    std::string key;
    std::chrono::milliseconds after;
};

// Runs the queue on its own loop for `how_long`, recording what fell due and when.
std::vector<fired> run_queue(asio::io_context& io, deadline_queue& queue,
                             std::chrono::milliseconds how_long, bool& active,
                             const std::function<void(const deadline&)>& also = {}) {
    std::vector<fired> seen;
    const auto start = system_clock::now();
    asio::co_spawn(
        io,
        queue.run(
            [&](const deadline& due) {
                seen.push_back({due.key, std::chrono::duration_cast<std::chrono::milliseconds>(
                                             system_clock::now() - start)});
                if (also) {
                    also(due);
                }
            },
            [&] { return active; }),
        asio::detached);
    io.run_for(how_long);
    return seen;
}

TEST(deadline_queue, deadlines_fall_due_in_time_order_not_in_the_order_added) {
    asio::io_context io;
    deadline_queue queue(io.get_executor());
    const auto now = system_clock::now();
    queue.add(now + 300ms, deadline_kind::lease_expiry, "c");
    queue.add(now + 100ms, deadline_kind::keep_expiry, "a");
    queue.add(now + 200ms, deadline_kind::surplus_trim, "b");
    EXPECT_EQ(queue.size(), 3u);
    EXPECT_EQ(queue.earliest(), now + 100ms);
    bool active = true;
    const auto seen = run_queue(io, queue, 600ms, active);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].key, "a");
    EXPECT_EQ(seen[1].key, "b");
    EXPECT_EQ(seen[2].key, "c");
    EXPECT_GE(seen[0].after, 95ms) << "nothing falls due early";
    EXPECT_LT(seen[2].after, 500ms) << "nor much later";
    EXPECT_EQ(queue.size(), 0u);
}

TEST(deadline_queue, a_removed_deadline_never_falls_due_and_an_earlier_one_rearms_the_timer) {
    asio::io_context io;
    deadline_queue queue(io.get_executor());
    const auto now = system_clock::now();
    queue.add(now + 10s, deadline_kind::lease_expiry, "far");
    queue.add(now + 150ms, deadline_kind::lease_expiry, "removed");
    queue.remove(now + 150ms, deadline_kind::lease_expiry, "removed");
    queue.remove(now + 1s, deadline_kind::lease_expiry, "never added");
    bool active = true;
    // The timer is armed for "far" when the queue starts; an earlier deadline added while it
    // waits must fire on time, not after 10 s.
    asio::steady_timer later(io, 100ms);
    later.async_wait([&](const boost::system::error_code&) {
        queue.add(system_clock::now() + 100ms, deadline_kind::build_expiry, "early");
    });
    const auto seen = run_queue(io, queue, 600ms, active);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].key, "early");
    EXPECT_LT(seen[0].after, 400ms);
    EXPECT_EQ(queue.size(), 1u) << "the far one waits";
}

TEST(deadline_queue, due_deadlines_wait_while_the_backend_is_down_and_come_on_wake) {
    asio::io_context io;
    deadline_queue queue(io.get_executor());
    queue.add(system_clock::now() + 50ms, deadline_kind::lease_expiry, "held");
    bool active = false;
    int handled = 0;
    bool ended = false;
    asio::co_spawn(io, queue.run([&](const deadline&) { ++handled; }, [&] { return active; }),
                   [&](const std::exception_ptr&) { ended = true; });
    io.run_for(300ms);
    EXPECT_EQ(handled, 0) << "nothing is handled while memory is not current";
    EXPECT_EQ(queue.size(), 1u);
    active = true;
    queue.wake();
    io.restart();
    io.run_for(200ms);
    EXPECT_EQ(handled, 1) << "handled once the backend came back";
    queue.stop();
    io.restart();
    io.run_for(100ms);
    EXPECT_TRUE(ended) << "stop() ends run()";
}

TEST(deadline_queue, a_handler_may_add_and_remove_deadlines) {
    asio::io_context io;
    deadline_queue queue(io.get_executor());
    const auto now = system_clock::now();
    queue.add(now + 50ms, deadline_kind::lease_expiry, "first");
    queue.add(now + 60ms, deadline_kind::lease_expiry, "cancelled by first");
    bool active = true;
    const auto seen = run_queue(io, queue, 400ms, active, [&](const deadline& due) {
        if (due.key == "first") {
            queue.remove(now + 60ms, deadline_kind::lease_expiry, "cancelled by first");
            queue.add(system_clock::now() + 50ms, deadline_kind::keep_expiry, "added by first");
        }
    });
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].key, "first");
    EXPECT_EQ(seen[1].key, "added by first");
    EXPECT_EQ(to_string(deadline_kind::keep_expiry), "keep_expiry");
}

}  // namespace
}  // namespace pglease
