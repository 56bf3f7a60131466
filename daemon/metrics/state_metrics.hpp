#pragma once

#include <vector>

#include <prometheus/collectable.h>

namespace pglease {

class broker;

/// Gauges derived from the broker's state at every scrape (pools by state, waiters, templates,
/// backends): read from the objects that hold the state, never kept in a second place.
class state_metrics : public prometheus::Collectable {
  public:
    explicit state_metrics(const broker& engine) : engine_(engine) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

  private:
    const broker& engine_;
};

}  // namespace pglease
