#include "leases/waiting_line.hpp"

#include "pool/template_pool.hpp"

namespace pglease {

namespace {

// True when `line` is `template_name`'s own or one of its versions'.
bool of_template(const std::string& line, const std::string& template_name) {
    return line.starts_with(template_name) &&
           (line.size() == template_name.size() || line[template_name.size()] == '/');
}

}  // namespace

std::string waiting_line::version_line(const std::string& template_name,
                                       const std::string& fingerprint) {
    return template_name + "/" + fingerprint;  // a template name has no '/'
}

waiting_line::position waiting_line::join(const std::string& line, waiter& w) {
    auto& waiting = lines_[line];
    waiting.push_back(&w);
    return std::prev(waiting.end());
}

void waiting_line::leave(const std::string& line, position where) {
    lines_.at(line).erase(where);
}

bool waiting_line::hand_over(template_pool& pool, clone& c, bool newest, std::uint64_t generation) {
    auto line = lines_.find(version_line(pool.template_name(), pool.fingerprint()));
    if ((line == lines_.end() || line->second.empty()) && newest) {
        line = lines_.find(pool.template_name());
    }
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
    for (auto& [line, waiting] : lines_) {
        if (of_template(line, template_name)) {
            for (waiter* w : waiting) {
                w->give_up = true;
                w->wakeup.cancel();
            }
        }
    }
}

void waiting_line::give_up_all() {
    for (auto& [line, waiting] : lines_) {
        for (waiter* w : waiting) {
            w->give_up = true;
            w->wakeup.cancel();
        }
    }
}

std::size_t waiting_line::count(const std::string& line) const noexcept {
    auto found = lines_.find(line);
    return found == lines_.end() ? 0 : found->second.size();
}

std::size_t waiting_line::count_all(const std::string& template_name) const noexcept {
    std::size_t total = 0;
    for (const auto& [line, waiting] : lines_) {
        if (of_template(line, template_name)) {
            total += waiting.size();
        }
    }
    return total;
}

std::size_t waiting_line::count_for(const template_pool& pool, bool newest) const noexcept {
    return count(version_line(pool.template_name(), pool.fingerprint())) +
           (newest ? count(pool.template_name()) : 0);
}

}  // namespace pglease
