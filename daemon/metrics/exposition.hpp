#pragma once

#include <string>
#include <vector>

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace pglease {

/// The content type of render_metrics()' text.
inline constexpr const char* metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `sources`, in the Prometheus text exposition format 0.0.4.
std::string render_metrics(const std::vector<const prometheus::Collectable*>& sources);

}  // namespace pglease
