#pragma once

#include <map>
#include <memory>
#include <string>

#include "broker/lease_types.hpp"

namespace prometheus {
class Counter;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace pglease {

/// The event metrics of one template (counters and histograms, summed over backends). Every
/// series exists, at zero, from the moment the template is known, so rates start at once.
class template_metrics {
  public:
    /// A lease was granted `wait_seconds` after it was asked for.
    void acquired(double wait_seconds);
    /// An acquire was refused after waiting (pool exhausted, template not ready, backend down).
    void wait_timed_out();
    void renewed();
    /// A lease held for `hold_seconds` was released.
    void released(release_mode mode, double hold_seconds);
    /// A lease held for `hold_seconds` reached its expiry.
    void expired(double hold_seconds);
    void clone_created(double seconds);
    void clone_failed();
    void clone_dropped(double seconds);
    void drop_failed();
    void build_succeeded(double seconds);
    void build_failed(double seconds);
    /// A clone was reset in place in `seconds`.
    void reset_in_place(double seconds);
    /// A clone could not be reset in place and was cloned again; `reason` is a short code
    /// (catalog, prepared, settings, sessions, snapshot, baseline, wal, unavailable, error).
    void recloned(const std::string& reason);
    /// A version was evicted: unleased for its idle time, or `for_room` under max_databases.
    void evicted(bool for_room);

  private:
    friend class broker_metrics;
    prometheus::Counter* acquired_ = nullptr;
    prometheus::Counter* wait_timeouts_ = nullptr;
    prometheus::Counter* renewals_ = nullptr;
    prometheus::Counter* released_recycle_ = nullptr;
    prometheus::Counter* released_reuse_ = nullptr;
    prometheus::Counter* released_keep_ = nullptr;
    prometheus::Counter* expired_ = nullptr;
    prometheus::Counter* clone_failures_ = nullptr;
    prometheus::Counter* drop_failures_ = nullptr;
    prometheus::Counter* builds_succeeded_ = nullptr;
    prometheus::Counter* builds_failed_ = nullptr;
    prometheus::Histogram* wait_ = nullptr;
    prometheus::Histogram* hold_ = nullptr;
    prometheus::Histogram* clone_duration_ = nullptr;
    prometheus::Histogram* drop_duration_ = nullptr;
    prometheus::Histogram* build_duration_ = nullptr;
    prometheus::Counter* resets_in_place_ = nullptr;
    prometheus::Histogram* reset_duration_ = nullptr;
    prometheus::Family<prometheus::Counter>* resets_ = nullptr;
    prometheus::Counter* evicted_idle_ = nullptr;
    prometheus::Counter* evicted_cap_ = nullptr;
    std::string name_;
};

/// The broker's event metrics: families registered once, a template_metrics per template.
class broker_metrics {
  public:
    broker_metrics();
    broker_metrics(const broker_metrics&) = delete;
    broker_metrics& operator=(const broker_metrics&) = delete;
    ~broker_metrics();

    /// The metrics of template `name`, created (at zero) on first use.
    template_metrics& of(const std::string& name);
    /// Where the families live, for /metrics.
    const std::shared_ptr<prometheus::Registry>& registry() const noexcept { return registry_; }

  private:
    struct families;
    std::shared_ptr<prometheus::Registry> registry_;
    std::unique_ptr<families> families_;
    std::map<std::string, template_metrics, std::less<>> templates_;
};

}  // namespace pglease
