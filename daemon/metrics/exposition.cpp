#include "metrics/exposition.hpp"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace pglease {

std::string render_metrics(const std::vector<const prometheus::Collectable*>& sources) {
    std::vector<prometheus::MetricFamily> families;
    for (const auto* source : sources) {
        auto collected = source->Collect();
        families.insert(families.end(), std::make_move_iterator(collected.begin()),
                        std::make_move_iterator(collected.end()));
    }
    return prometheus::TextSerializer().Serialize(families);
}

}  // namespace pglease
