#include "metrics/process_metrics.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

#include <prometheus/metric_family.h>

#include "process/proc_stat.hpp"

namespace pglease {

namespace {

prometheus::MetricFamily one_value(const char* name, const char* help, prometheus::MetricType type,
                                   double value) {
    prometheus::MetricFamily family{name, help, type, {}};
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
        metric.counter.value = value;
    } else {
        metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
    return family;
}

std::optional<double> boot_time() {
    std::ifstream file("/proc/stat");
    std::string key;
    double value = 0;
    while (file >> key) {
        if (key == "btime" && file >> value) {
            return value;
        }
        file.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return std::nullopt;
}

std::size_t open_fds() {
    std::error_code ignored;
    std::size_t count = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ignored), end;
         !ignored && it != end; it.increment(ignored)) {
        ++count;
    }
    // The directory iterator's own descriptor is counted too.
    return count > 0 ? count - 1 : 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> process_metrics::Collect() const {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> families;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    if (const auto stat = read_proc_stat()) {
        families.push_back(one_value(
            "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            MetricType::Counter, (stat->utime_ticks + stat->stime_ticks) / ticks));
        families.push_back(one_value("process_resident_memory_bytes",
                                     "Resident memory size in bytes.", MetricType::Gauge,
                                     stat->resident_pages * page));
        families.push_back(one_value("process_virtual_memory_bytes",
                                     "Virtual memory size in bytes.", MetricType::Gauge,
                                     stat->virtual_bytes));
        if (const auto boot = boot_time()) {
            families.push_back(one_value("process_start_time_seconds",
                                         "Start time of the process since unix epoch in seconds.",
                                         MetricType::Gauge, *boot + stat->start_ticks / ticks));
        }
    }
    families.push_back(one_value("process_open_fds", "Number of open file descriptors.",
                                 MetricType::Gauge, static_cast<double>(open_fds())));
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        families.push_back(one_value("process_max_fds", "Maximum number of open file descriptors.",
                                     MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
    }
    return families;
}

}  // namespace pglease
