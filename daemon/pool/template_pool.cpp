#include "pool/template_pool.hpp"

#include <stdexcept>

namespace pglease {

std::string_view to_string(clone_state state) noexcept {
    switch (state) {
        case clone_state::creating:
            return "creating";
        case clone_state::idle:
            return "idle";
        case clone_state::leased:
            return "leased";
        case clone_state::kept:
            return "kept";
        case clone_state::dropping:
            return "dropping";
        case clone_state::resetting:
            return "resetting";
    }
    return "unknown";
}

template_pool::template_pool(std::string template_name, std::string fingerprint,
                             std::string template_database)
    : template_name_(std::move(template_name)),
      fingerprint_(std::move(fingerprint)),
      template_database_(std::move(template_database)) {}

clone& template_pool::add(std::string name, clone_state state) {
    auto fresh = std::make_unique<clone>();
    fresh->name = name;
    fresh->state = state;
    auto [it, inserted] = clones_.emplace(std::move(name), std::move(fresh));
    if (!inserted) {
        throw std::logic_error("clone " + it->first + " is already in its pool");
    }
    clone& c = *it->second;
    auto& list = by_state_[static_cast<std::size_t>(state)];
    c.position = list.insert(list.end(), &c);
    if (on_change) {
        on_change(*this);
    }
    return c;
}

void template_pool::move(clone& c, clone_state to) {
    by_state_[static_cast<std::size_t>(c.state)].erase(c.position);
    auto& list = by_state_[static_cast<std::size_t>(to)];
    c.position = list.insert(list.end(), &c);
    c.state = to;
    if (to != clone_state::leased) {
        c.lease_key.clear();
    }
    if (to != clone_state::kept) {
        c.kept_until.reset();
    }
    if (on_change) {
        on_change(*this);
    }
}

void template_pool::remove(clone& c) {
    by_state_[static_cast<std::size_t>(c.state)].erase(c.position);
    clones_.erase(c.name);
    if (on_change) {
        on_change(*this);
    }
}

clone* template_pool::find(std::string_view name) noexcept {
    auto it = clones_.find(std::string(name));
    return it == clones_.end() ? nullptr : it->second.get();
}

clone* template_pool::oldest_idle() noexcept {
    const auto& idle = by_state_[static_cast<std::size_t>(clone_state::idle)];
    return idle.empty() ? nullptr : idle.front();
}

const std::list<clone*>& template_pool::in_state(clone_state state) const noexcept {
    return by_state_[static_cast<std::size_t>(state)];
}

std::size_t template_pool::count(clone_state state) const noexcept {
    return by_state_[static_cast<std::size_t>(state)].size();
}

void template_pool::note_sequence(std::uint32_t seen) noexcept {
    if (seen > last_sequence_) {
        last_sequence_ = seen;
    }
}

}  // namespace pglease
