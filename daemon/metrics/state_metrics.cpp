#include "metrics/state_metrics.hpp"

#include <array>
#include <string>
#include <utility>

#include <prometheus/metric_family.h>

#include "broker/broker.hpp"

namespace pglease {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;

MetricFamily gauge_family(const char* name, const char* help) {
    return MetricFamily{name, help, prometheus::MetricType::Gauge, {}};
}

void add(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
    ClientMetric metric;
    metric.label = std::move(labels);
    metric.gauge.value = value;
    family.metric.push_back(std::move(metric));
}

}  // namespace

std::vector<MetricFamily> state_metrics::Collect() const {
    auto databases = gauge_family(
        "pglease_pool_databases",
        "Clones of the template (every version, every backend) by state: creating, idle, "
        "leased, kept, dropping, resetting.");
    auto min_idle = gauge_family("pglease_pool_min_idle", "The template's configured min_idle.");
    auto max_total =
        gauge_family("pglease_pool_max_clones",
                     "The template's configured max_total: the most clones it may have.");
    auto waiters =
        gauge_family("pglease_pool_waiters", "Acquire calls waiting for a clone right now.");
    auto info = gauge_family("pglease_template_info",
                             "1 for the template version leases get now (its fingerprint).");
    auto versions = gauge_family(
        "pglease_template_versions",
        "Versions of the template that serve leases (a client-initialized template keeps older "
        "ones side by side until they are evicted).");
    auto state = gauge_family("pglease_template_state",
                              "1 for the template's current state (building, ready, failed).");
    for (const template_status& t : engine_.templates()) {
        const std::array<std::pair<const char*, std::size_t>, 6> by_state{{
            {"creating", t.pool.creating},
            {"idle", t.pool.idle},
            {"leased", t.pool.leased},
            {"kept", t.pool.kept},
            {"dropping", t.pool.dropping},
            {"resetting", t.pool.resetting},
        }};
        for (const auto& [name, count] : by_state) {
            add(databases, {{"state", name}, {"template", t.name}}, static_cast<double>(count));
        }
        add(min_idle, {{"template", t.name}}, t.pool.min_idle);
        add(max_total, {{"template", t.name}}, t.pool.max_total);
        add(waiters, {{"template", t.name}}, static_cast<double>(t.pool.waiters));
        add(versions, {{"template", t.name}}, static_cast<double>(t.versions.size()));
        if (!t.fingerprint.empty()) {
            add(info, {{"fingerprint", t.fingerprint}, {"source", t.source}, {"template", t.name}},
                1);
        }
        for (const auto one :
             {template_state::building, template_state::ready, template_state::failed}) {
            add(state, {{"state", std::string(to_string(one))}, {"template", t.name}},
                t.state == one ? 1 : 0);
        }
    }

    auto up = gauge_family("pglease_backend_up",
                           "1 while the backend is reachable and reconciled, else 0.");
    auto connections =
        gauge_family("pglease_backend_admin_connections", "Open admin connections to the backend.");
    auto managed = gauge_family(
        "pglease_backend_databases",
        "Databases pglease manages on the backend (templates and clones, in any state).");
    auto cap = gauge_family("pglease_backend_max_databases", "The backend's max_databases cap.");
    auto operations = gauge_family("pglease_backend_operations_in_progress",
                                   "CREATE DATABASE and DROP DATABASE running on the backend now.");
    auto parallel =
        gauge_family("pglease_backend_max_parallel_clones", "The backend's max_parallel_clones.");
    auto orphan_directories = gauge_family(
        "pglease_backend_orphan_directories",
        "Directories in the backend's data directory that no database owns (left by interrupted "
        "CREATE DATABASE), as of the last reconcile; absent when the admin may not read them.");
    auto orphan_bytes = gauge_family("pglease_backend_orphan_bytes",
                                     "Bytes in those directories (see "
                                     "pglease_backend_orphan_directories).");
    for (const backend_status& b : engine_.backends()) {
        if (b.orphans) {
            add(orphan_directories, {{"backend", b.name}},
                static_cast<double>(b.orphans->directories));
            add(orphan_bytes, {{"backend", b.name}}, static_cast<double>(b.orphans->bytes));
        }
        add(up, {{"backend", b.name}}, b.up ? 1 : 0);
        add(connections, {{"backend", b.name}}, static_cast<double>(b.admin_connections));
        add(managed, {{"backend", b.name}}, static_cast<double>(b.databases));
        add(cap, {{"backend", b.name}}, static_cast<double>(b.max_databases));
        add(operations, {{"backend", b.name}}, static_cast<double>(b.operations_in_progress));
        add(parallel, {{"backend", b.name}}, static_cast<double>(b.max_parallel_clones));
    }

    auto build = gauge_family("pglease_build_info", "1, labelled with the pgleased version.");
    add(build, {{"version", PGLEASE_VERSION}}, 1);

    std::vector<MetricFamily> families;
    for (auto* family :
         {&databases, &min_idle, &max_total, &waiters, &versions, &info, &state, &up, &connections,
          &managed, &cap, &operations, &parallel, &orphan_directories, &orphan_bytes, &build}) {
        families.push_back(std::move(*family));
    }
    return families;
}

}  // namespace pglease
