#pragma once

#include <memory>
#include <string>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace pglease {

/// Requests the HTTP API answered: counted by route pattern and status, timed by route.
class http_metrics {
  public:
    http_metrics();
    http_metrics(const http_metrics&) = delete;
    http_metrics& operator=(const http_metrics&) = delete;
    ~http_metrics();

    /// One answered request; `route` is a pattern such as "/v1/leases/{id}", never a raw path.
    void record(const std::string& route, int status, double seconds);
    /// Where the families live, for /metrics.
    const std::shared_ptr<prometheus::Registry>& registry() const noexcept { return registry_; }

  private:
    struct families;
    std::shared_ptr<prometheus::Registry> registry_;
    std::unique_ptr<families> families_;
};

}  // namespace pglease
