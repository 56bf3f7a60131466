#include "leases/deadline_queue.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pglease {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;

std::string_view to_string(deadline_kind kind) noexcept {
    switch (kind) {
        case deadline_kind::lease_expiry:
            return "lease_expiry";
        case deadline_kind::keep_expiry:
            return "keep_expiry";
        case deadline_kind::build_expiry:
            return "build_expiry";
        case deadline_kind::surplus_trim:
            break;
    }
    return "surplus_trim";
}

deadline_queue::deadline_queue(const asio::any_io_executor& executor) : timer_(executor) {}

void deadline_queue::add(system_clock::time_point when, deadline_kind kind, std::string key) {
    const bool earliest = deadlines_.empty() || when < deadlines_.begin()->when;
    deadlines_.insert(deadline{when, kind, std::move(key)});
    if (earliest) {
        timer_.cancel();  // run() re-arms for the new earliest
    }
}

void deadline_queue::remove(system_clock::time_point when, deadline_kind kind,
                            const std::string& key) {
    deadlines_.erase(deadline{when, kind, key});
}

void deadline_queue::clear() noexcept {
    deadlines_.clear();
}

std::optional<system_clock::time_point> deadline_queue::earliest() const {
    if (deadlines_.empty()) {
        return std::nullopt;
    }
    return deadlines_.begin()->when;
}

asio::awaitable<void> deadline_queue::run(std::function<void(const deadline&)> on_due,
                                          std::function<bool()> active) {
    while (!stopped_) {
        // While deadlines may not be handled (the backend is down), wait for wake() alone.
        const auto next = active() ? earliest() : std::nullopt;
        timer_.expires_at(next.value_or(system_clock::now() + 24h));
        boost::system::error_code ignored;
        co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        // One at a time: handling a deadline may add or remove others.
        while (!stopped_ && active() && !deadlines_.empty() &&
               deadlines_.begin()->when <= system_clock::now()) {
            const deadline due = deadlines_.extract(deadlines_.begin()).value();
            on_due(due);
        }
    }
}

void deadline_queue::stop() {
    stopped_ = true;
    timer_.cancel();
}

}  // namespace pglease
