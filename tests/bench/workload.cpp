#include "bench/workload.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <latch>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#include "process/proc_stat.hpp"

namespace pglease::bench {

double ms_between(clock::time_point from, clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

double percentile(std::vector<double> values, double p) {
    if (values.empty()) {
        return std::numeric_limits<double>::quiet_NaN();
    }
    std::sort(values.begin(), values.end());
    const auto rank =
        static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
    return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

namespace {

// Busy and total jiffies of all CPUs, from /proc/stat's first line.
std::pair<double, double> host_cpu_jiffies() {
    std::ifstream stat("/proc/stat");
    std::string cpu;
    stat >> cpu;
    double total = 0;
    double idle = 0;
    double value = 0;
    for (int field = 0; field < 8 && stat >> value; ++field) {
        total += value;
        if (field == 3 || field == 4) {  // idle, iowait
            idle += value;
        }
    }
    return {total - idle, total};
}

}  // namespace

run_result run_workers(int workers, const run_limits& limits,
                       const std::function<std::unique_ptr<worker>(int)>& make) {
    run_result result;
    result.workers = workers;
    std::mutex mutex;
    std::atomic<std::size_t> claimed{0};
    std::latch ready(workers + 1);
    std::latch go(1);
    clock::time_point deadline;
    clock::time_point last_finish;
    {
        std::vector<std::jthread> threads;
        threads.reserve(static_cast<std::size_t>(workers));
        for (int w = 0; w < workers; ++w) {
            threads.emplace_back([&, w] {
                std::unique_ptr<worker> self;
                std::string failure;
                try {
                    self = make(w);
                } catch (const std::exception& e) {
                    failure = e.what();
                }
                ready.count_down();
                go.wait();
                std::vector<sample> samples;
                while (self && failure.empty() && clock::now() < deadline) {
                    const std::size_t index = claimed.fetch_add(1);
                    if (limits.iterations && index >= *limits.iterations) {
                        break;
                    }
                    try {
                        samples.push_back(self->iterate(index));
                    } catch (const std::exception& e) {
                        failure = e.what();
                    }
                }
                const auto finished = clock::now();
                std::scoped_lock lock(mutex);
                last_finish = std::max(last_finish, finished);
                result.iterations += samples.size();
                for (const auto& s : samples) {
                    result.time_to_database_ms.push_back(s.time_to_database_ms);
                    if (s.lease_call_ms) {
                        result.lease_call_ms.push_back(*s.lease_call_ms);
                    }
                    if (s.release_call_ms) {
                        result.release_call_ms.push_back(*s.release_call_ms);
                    }
                    result.reclones += s.recloned ? 1 : 0;
                }
                if (!failure.empty()) {
                    result.errors.push_back("worker " + std::to_string(w) + ": " + failure);
                }
                self.reset();
            });
        }
        ready.arrive_and_wait();
        const auto [busy_before, total_before] = host_cpu_jiffies();
        const auto start = clock::now();
        deadline = start + std::chrono::duration_cast<clock::duration>(limits.duration);
        last_finish = start;
        go.count_down();
        threads.clear();
        const auto [busy_after, total_after] = host_cpu_jiffies();
        if (total_after > total_before) {
            result.host_busy = (busy_after - busy_before) / (total_after - total_before);
            result.host_cpu_seconds =
                (busy_after - busy_before) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        }
        result.seconds = std::chrono::duration<double>(last_finish - start).count();
    }
    return result;
}

process_usage read_process_usage(pid_t pid) {
    const std::string proc = "/proc/" + std::to_string(pid);
    const auto stat = read_proc_stat(std::to_string(pid));
    if (!stat) {
        throw std::runtime_error("process " + std::to_string(pid) + " is gone");
    }
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    process_usage usage;
    usage.cpu_seconds = (stat->utime_ticks + stat->stime_ticks) / ticks;
    std::ifstream status(proc + "/status");
    for (std::string line; std::getline(status, line);) {
        std::istringstream in(line);
        std::string key;
        double kb = 0;
        in >> key >> kb;
        if (key == "VmRSS:") {
            usage.rss_mb = kb / 1024;
        } else if (key == "VmHWM:") {
            usage.peak_rss_mb = kb / 1024;
        }
    }
    // schedstat: nanoseconds on CPU, nanoseconds waiting to run, times scheduled.
    for (const auto& task : std::filesystem::directory_iterator(proc + "/task")) {
        std::ifstream schedstat(task.path() / "schedstat");
        double on_cpu_ns = 0;
        double waited_ns = 0;
        long long runs = 0;
        if (schedstat >> on_cpu_ns >> waited_ns >> runs) {
            usage.thread_cpu_seconds += on_cpu_ns / 1e9;
            usage.thread_runs += runs;
        }
    }
    return usage;
}

}  // namespace pglease::bench
