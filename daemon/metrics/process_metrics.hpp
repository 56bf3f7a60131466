#pragma once

#include <vector>

#include <prometheus/collectable.h>

namespace pglease {

/// The standard process_* metrics of this process, read from /proc at every scrape.
class process_metrics : public prometheus::Collectable {
  public:
    std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace pglease
