#include "metrics/http_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace pglease {

namespace {

// A warm lease answers in well under a millisecond; a lease that waits for a clone takes up to
// its wait.
prometheus::Histogram::BucketBoundaries latency_buckets() {
    return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
}

}  // namespace

struct http_metrics::families {
    explicit families(prometheus::Registry& r)
        : requests(prometheus::BuildCounter()
                       .Name("pglease_http_requests_total")
                       .Help("HTTP requests answered, by route pattern and status code.")
                       .Register(r)),
          duration(prometheus::BuildHistogram()
                       .Name("pglease_http_request_duration_seconds")
                       .Help("Time to answer an HTTP request, by route pattern.")
                       .Register(r)) {}

    prometheus::Family<prometheus::Counter>& requests;
    prometheus::Family<prometheus::Histogram>& duration;
};

http_metrics::http_metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<families>(*registry_)) {}

http_metrics::~http_metrics() = default;

void http_metrics::record(const std::string& route, int status, double seconds) {
    families_->requests.Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
    static const auto buckets = latency_buckets();
    families_->duration.Add({{"route", route}}, buckets).Observe(seconds);
}

}  // namespace pglease
