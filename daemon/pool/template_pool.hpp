#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "catalog/catalog_comment.hpp"

namespace pglease {

struct version_snapshot;

/// Where a clone is in its life: creating -> idle -> leased -> (resetting | dropping | kept |
/// idle), resetting -> idle.
enum class clone_state { creating, idle, leased, kept, dropping, resetting };
inline constexpr std::size_t clone_state_count = 6;

/// The name used in status, metrics and logs.
std::string_view to_string(clone_state state) noexcept;

/// One database cloned from a template version.
struct clone {
    std::string name;
    clone_state state = clone_state::creating;
    /// The lease holding it (SHA-256 of the id), while leased.
    std::string lease_key;
    /// When a kept clone is dropped.
    std::optional<std::chrono::system_clock::time_point> kept_until;
    /// With per-lease roles, the role of a lease that is over but may still connect to it (kept,
    /// or expired on the way to being dropped): it is dropped with the clone.
    std::string lease_role;
    /// Where its next reset in place starts from; none: it can only be cloned again.
    std::optional<reset_baseline> baseline;
    /// Its place in its pool's list for its state.
    std::list<clone*>::iterator position;
};

/// The clones of one template version on one backend. A clone's state is the list it sits on,
/// and move() alone changes it, so counts are derived and never drift.
class template_pool {
  public:
    /// ready: serves leases; draining: replaced (or unconfigured), its clones go away.
    enum class phase { ready, draining };

    template_pool(std::string template_name, std::string fingerprint,
                  std::string template_database);
    template_pool(const template_pool&) = delete;
    template_pool& operator=(const template_pool&) = delete;

    /// A new clone in `state`; throws std::logic_error when the name is taken.
    clone& add(std::string name, clone_state state);
    /// Moves `c` to `to` (the only way a clone changes state).
    void move(clone& c, clone_state to);
    /// Forgets `c` (after it was dropped).
    void remove(clone& c);
    /// The clone named `name`, or nullptr.
    clone* find(std::string_view name) noexcept;
    /// The idle clone that has waited longest, or nullptr. It stays idle until moved.
    clone* oldest_idle() noexcept;
    /// Every clone in `state`, in the order they entered it.
    const std::list<clone*>& in_state(clone_state state) const noexcept;

    /// Number of clones in `state`.
    std::size_t count(clone_state state) const noexcept;
    /// Every clone, those being dropped included: each is a database on the backend, and each
    /// counts against max_total, so a disk cannot fill while drops lag behind clones.
    std::size_t size() const noexcept { return clones_.size(); }

    /// The next sequence number for a clone name.
    std::uint32_t next_sequence() noexcept { return ++last_sequence_; }
    /// Records a sequence number seen in an adopted clone's name.
    void note_sequence(std::uint32_t seen) noexcept;

    const std::string& template_name() const noexcept { return template_name_; }
    const std::string& fingerprint() const noexcept { return fingerprint_; }
    const std::string& template_database() const noexcept { return template_database_; }
    phase current_phase() const noexcept { return phase_; }
    void set_phase(phase p) noexcept { phase_ = p; }
    /// What the version holds, for resets in place; nullptr when it was not recorded.
    const std::shared_ptr<const version_snapshot>& snapshot() const noexcept { return snapshot_; }
    void set_snapshot(std::shared_ptr<const version_snapshot> s) noexcept {
        snapshot_ = std::move(s);
    }

    /// When a lease last took one of its clones (or the version became ready): a version of a
    /// client-initialized template nobody leases for a while keeps no warm clones, and goes.
    std::chrono::system_clock::time_point last_leased{};
    /// The last_leased its template database's comment holds.
    std::chrono::system_clock::time_point recorded_leased{};

    /// Called after every move, add and remove (metrics hook).
    std::function<void(const template_pool&)> on_change;

  private:
    std::string template_name_;
    std::string fingerprint_;
    std::string template_database_;
    phase phase_ = phase::ready;
    std::shared_ptr<const version_snapshot> snapshot_;
    std::uint32_t last_sequence_ = 0;
    std::unordered_map<std::string, std::unique_ptr<clone>> clones_;
    std::array<std::list<clone*>, clone_state_count> by_state_;
};

}  // namespace pglease
