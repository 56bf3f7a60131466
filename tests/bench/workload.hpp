#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

// Running W workers against one scenario and collecting what they saw.
namespace pglease::bench {

using clock = std::chrono::steady_clock;

/// Milliseconds from `from` to `to`.
double ms_between(clock::time_point from, clock::time_point to);

/// The nearest-rank percentile `p` (0..100) of `values`; NaN when there are none.
double percentile(std::vector<double> values, double p);

/// What one iteration measured.
struct sample {
    /// From asking for a database to holding a usable connection to it.
    double time_to_database_ms = 0;
    /// The HTTP lease call alone (pglease scenarios only).
    std::optional<double> lease_call_ms;
    /// The HTTP release call alone (pglease scenarios only).
    std::optional<double> release_call_ms;
    /// A sticky reset that pgleased answered by cloning the database again.
    bool recloned = false;
};

/// One worker's state (its HTTP client, its admin connection): made on its own thread before
/// the clock starts, used by that thread only.
class worker {
  public:
    virtual ~worker() = default;
    /// One iteration: get a database, connect, run the test body, give the database back.
    virtual sample iterate(std::size_t index) = 0;
};

/// How long a run lasts: until `duration` has passed, or `iterations` in total were done,
/// whichever comes first. Iterations under way when time is up are finished and counted.
struct run_limits {
    std::chrono::duration<double> duration{60};
    std::optional<std::size_t> iterations;
};

/// What a run measured.
struct run_result {
    int workers = 0;
    std::size_t iterations = 0;
    double seconds = 0;
    std::vector<double> time_to_database_ms;
    std::vector<double> lease_call_ms;
    std::vector<double> release_call_ms;
    /// Sticky resets answered by a reclone instead of a reset in place.
    std::size_t reclones = 0;
    /// The first failure of each worker that failed (a failed worker stops).
    std::vector<std::string> errors;
    /// Share of the machine's CPU time that was busy during the run (all processes), 0..1,
    /// and that busy time in seconds.
    double host_busy = 0;
    double host_cpu_seconds = 0;

    double per_second() const {
        return seconds > 0 ? static_cast<double>(iterations) / seconds : 0;
    }
};

/// Runs `workers` threads, each with the worker `make(index)` returns, within `limits`.
run_result run_workers(int workers, const run_limits& limits,
                       const std::function<std::unique_ptr<worker>(int)>& make);

/// CPU time and memory of a process, from /proc.
struct process_usage {
    /// User + system time of the process (all its threads, living or gone), in clock ticks.
    double cpu_seconds = 0;
    /// On-CPU time of its living threads to the nanosecond, and how often they were scheduled.
    double thread_cpu_seconds = 0;
    long long thread_runs = 0;
    double rss_mb = 0;
    double peak_rss_mb = 0;
};

/// Reads /proc/<pid>/stat, status and task/*/schedstat; throws when the process is gone.
process_usage read_process_usage(pid_t pid);

}  // namespace pglease::bench
