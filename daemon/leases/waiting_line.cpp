#include "leases/waiting_line.hpp"

#include "pool/template_pool.hpp"

namespace pglease {

waiting_line::position waiting_line::join(const std::string& template_name, waiter& w) {
    auto& line = lines_[template_name];
    line.push_back(&w);
    return std::prev(line.end());
}

void waiting_line::leave(const std::string& template_name, position where) {
    lines_.at(template_name).erase(where);
}

bool waiting_line::hand_over(template_pool& pool, clone& c, std::uint64_t generation) {
    auto line = lines_.find(pool.template_name());
    if (line == lines_.end() || line->second.empty()) {
        return false;
    }
    waiter* next = line->second.front();
    line->second.pop_front();
    // It writes the lease once it runs again.
    pool.move(c, clone_state::leased);
    next->pool = &pool;
    next->granted = &c;
    next->granted_in = generation;
    next->wakeup.cancel();
    return true;
}

void waiting_line::give_up(const std::string& template_name) {
    auto line = lines_.find(template_name);
    if (line == lines_.end()) {
        return;
    }
    for (waiter* w : line->second) {
        w->give_up = true;
        w->wakeup.cancel();
    }
}

void waiting_line::give_up_all() {
    for (auto& [name, line] : lines_) {
        give_up(name);
    }
}

std::size_t waiting_line::count(const std::string& template_name) const noexcept {
    auto line = lines_.find(template_name);
    return line == lines_.end() ? 0 : line->second.size();
}

}  // namespace pglease
