#pragma once

// What every part of one backend's engine shares about the backend's life. Only the shard
// changes up, stopping and generation; parts read them, and count their background work here.

#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace pglease {

struct backend_life {
    /// Reachable and reconciled: memory holds what the catalog says.
    bool up = false;
    /// The engine stops: start nothing new.
    bool stopping = false;
    /// Bumped whenever memory is thrown away (backend lost). Work suspended in an await checks
    /// it on resume: pointers into older memory are dangling.
    std::uint64_t generation = 0;
    /// Background tasks running; stop waits for them.
    int background_tasks = 0;
};

/// Runs `task` in the background on `executor`, counted in `life`. A failure is logged as
/// "`backend` `what` failed: …"; `done` (if any) runs after the task, however it ended.
void spawn_background(const boost::asio::any_io_executor& executor, backend_life& life,
                      boost::asio::awaitable<void> task, std::string backend, std::string what,
                      std::function<void()> done = {});

}  // namespace pglease
