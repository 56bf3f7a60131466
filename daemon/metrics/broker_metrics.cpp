#include "metrics/broker_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace pglease {

namespace {

using prometheus::Histogram;

// Sub-millisecond when a clone is idle, up to the longest wait a request may ask for.
Histogram::BucketBoundaries wait_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
            0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}
// A unit test holds its database for milliseconds, a CI job for up to an hour.
Histogram::BucketBoundaries hold_buckets() {
    return {0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
}
// CREATE/DROP DATABASE: about 10 ms for a small template on tmpfs, seconds for a large one on
// disk.
Histogram::BucketBoundaries database_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}
// A reset in place: a millisecond for a few small tables, seconds when many rows go back.
Histogram::BucketBoundaries reset_buckets() {
    return {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
}
// Migrations and commands: a fraction of a second to minutes.
Histogram::BucketBoundaries build_buckets() {
    return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

}  // namespace

struct broker_metrics::families {
    explicit families(prometheus::Registry& r)
        : acquired(prometheus::BuildCounter()
                       .Name("pglease_leases_acquired_total")
                       .Help("Leases granted.")
                       .Register(r)),
          released(prometheus::BuildCounter()
                       .Name("pglease_leases_released_total")
                       .Help("Leases released by their worker, by release mode.")
                       .Register(r)),
          expired(prometheus::BuildCounter()
                      .Name("pglease_leases_expired_total")
                      .Help("Leases that reached their expiry without being released.")
                      .Register(r)),
          renewals(prometheus::BuildCounter()
                       .Name("pglease_lease_renewals_total")
                       .Help("Lease renewals.")
                       .Register(r)),
          wait_timeouts(prometheus::BuildCounter()
                            .Name("pglease_lease_wait_timeouts_total")
                            .Help("Acquire calls refused after waiting (pool exhausted, "
                                  "template not ready, backend down).")
                            .Register(r)),
          wait(prometheus::BuildHistogram()
                   .Name("pglease_lease_wait_seconds")
                   .Help("Time from an acquire call to its granted, recorded lease.")
                   .Register(r)),
          hold(prometheus::BuildHistogram()
                   .Name("pglease_lease_hold_seconds")
                   .Help("Time from acquire to release or expiry.")
                   .Register(r)),
          clone_duration(prometheus::BuildHistogram()
                             .Name("pglease_clone_duration_seconds")
                             .Help("Time to create one clone (CREATE DATABASE ... TEMPLATE and "
                                   "its catalog comment).")
                             .Register(r)),
          clone_failures(prometheus::BuildCounter()
                             .Name("pglease_clone_failures_total")
                             .Help("Clones that could not be created.")
                             .Register(r)),
          drop_duration(prometheus::BuildHistogram()
                            .Name("pglease_drop_duration_seconds")
                            .Help("Time to drop one clone.")
                            .Register(r)),
          drop_failures(prometheus::BuildCounter()
                            .Name("pglease_drop_failures_total")
                            .Help("Clone drops that failed (retried later).")
                            .Register(r)),
          builds(prometheus::BuildCounter()
                     .Name("pglease_template_builds_total")
                     .Help("Template version builds, by result.")
                     .Register(r)),
          build_duration(prometheus::BuildHistogram()
                             .Name("pglease_template_build_duration_seconds")
                             .Help("Time to build a template version.")
                             .Register(r)),
          resets(prometheus::BuildCounter()
                     .Name("pglease_resets_total")
                     .Help("Clones made fresh after a lease by the reset strategy: result reset "
                           "(in place), or reclone with the reason it could not be proven "
                           "exact.")
                     .Register(r)),
          reset_duration(prometheus::BuildHistogram()
                             .Name("pglease_reset_duration_seconds")
                             .Help("Time to reset one clone in place.")
                             .Register(r)),
          evictions(prometheus::BuildCounter()
                        .Name("pglease_template_evictions_total")
                        .Help("Versions of client-initialized templates evicted with their "
                              "clones: reason idle (no lease for version_idle_seconds) or cap "
                              "(the backend's max_databases was reached).")
                        .Register(r)) {}

    prometheus::Family<prometheus::Counter>& acquired;
    prometheus::Family<prometheus::Counter>& released;
    prometheus::Family<prometheus::Counter>& expired;
    prometheus::Family<prometheus::Counter>& renewals;
    prometheus::Family<prometheus::Counter>& wait_timeouts;
    prometheus::Family<Histogram>& wait;
    prometheus::Family<Histogram>& hold;
    prometheus::Family<Histogram>& clone_duration;
    prometheus::Family<prometheus::Counter>& clone_failures;
    prometheus::Family<Histogram>& drop_duration;
    prometheus::Family<prometheus::Counter>& drop_failures;
    prometheus::Family<prometheus::Counter>& builds;
    prometheus::Family<Histogram>& build_duration;
    prometheus::Family<prometheus::Counter>& resets;
    prometheus::Family<Histogram>& reset_duration;
    prometheus::Family<prometheus::Counter>& evictions;
};

broker_metrics::broker_metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<families>(*registry_)) {}

broker_metrics::~broker_metrics() = default;

template_metrics& broker_metrics::of(const std::string& name) {
    auto found = templates_.find(name);
    if (found != templates_.end()) {
        return found->second;
    }
    template_metrics& m = templates_[name];
    families& f = *families_;
    const prometheus::Labels labels{{"template", name}};
    m.acquired_ = &f.acquired.Add(labels);
    m.released_recycle_ = &f.released.Add({{"template", name}, {"mode", "recycle"}});
    m.released_reuse_ = &f.released.Add({{"template", name}, {"mode", "reuse"}});
    m.released_keep_ = &f.released.Add({{"template", name}, {"mode", "keep"}});
    m.expired_ = &f.expired.Add(labels);
    m.renewals_ = &f.renewals.Add(labels);
    m.wait_timeouts_ = &f.wait_timeouts.Add(labels);
    m.wait_ = &f.wait.Add(labels, wait_buckets());
    m.hold_ = &f.hold.Add(labels, hold_buckets());
    m.clone_duration_ = &f.clone_duration.Add(labels, database_buckets());
    m.clone_failures_ = &f.clone_failures.Add(labels);
    m.drop_duration_ = &f.drop_duration.Add(labels, database_buckets());
    m.drop_failures_ = &f.drop_failures.Add(labels);
    m.builds_succeeded_ = &f.builds.Add({{"template", name}, {"result", "success"}});
    m.builds_failed_ = &f.builds.Add({{"template", name}, {"result", "failure"}});
    m.build_duration_ = &f.build_duration.Add(labels, build_buckets());
    m.resets_in_place_ = &f.resets.Add({{"template", name}, {"result", "reset"}, {"reason", ""}});
    m.reset_duration_ = &f.reset_duration.Add(labels, reset_buckets());
    m.resets_ = &f.resets;
    m.evicted_idle_ = &f.evictions.Add({{"template", name}, {"reason", "idle"}});
    m.evicted_cap_ = &f.evictions.Add({{"template", name}, {"reason", "cap"}});
    m.name_ = name;
    return m;
}

void template_metrics::acquired(double wait_seconds) {
    acquired_->Increment();
    wait_->Observe(wait_seconds);
}

void template_metrics::wait_timed_out() {
    wait_timeouts_->Increment();
}

void template_metrics::renewed() {
    renewals_->Increment();
}

void template_metrics::released(release_mode mode, double hold_seconds) {
    switch (mode) {
        case release_mode::recycle:
            released_recycle_->Increment();
            break;
        case release_mode::reuse:
            released_reuse_->Increment();
            break;
        case release_mode::keep:
            released_keep_->Increment();
            break;
    }
    hold_->Observe(hold_seconds);
}

void template_metrics::expired(double hold_seconds) {
    expired_->Increment();
    hold_->Observe(hold_seconds);
}

void template_metrics::clone_created(double seconds) {
    clone_duration_->Observe(seconds);
}

void template_metrics::clone_failed() {
    clone_failures_->Increment();
}

void template_metrics::clone_dropped(double seconds) {
    drop_duration_->Observe(seconds);
}

void template_metrics::drop_failed() {
    drop_failures_->Increment();
}

void template_metrics::build_succeeded(double seconds) {
    builds_succeeded_->Increment();
    build_duration_->Observe(seconds);
}

void template_metrics::build_failed(double seconds) {
    builds_failed_->Increment();
    build_duration_->Observe(seconds);
}

void template_metrics::reset_in_place(double seconds) {
    resets_in_place_->Increment();
    reset_duration_->Observe(seconds);
}

void template_metrics::evicted(bool for_room) {
    (for_room ? evicted_cap_ : evicted_idle_)->Increment();
}

void template_metrics::recloned(const std::string& reason) {
    resets_->Add({{"template", name_}, {"result", "reclone"}, {"reason", reason}}).Increment();
}

}  // namespace pglease
