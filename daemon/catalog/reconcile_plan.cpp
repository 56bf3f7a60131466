#include "catalog/reconcile_plan.hpp"

#include <algorithm>

namespace pglease {

using std::chrono::system_clock;

reconcile_plan plan_reconcile(const std::vector<listed_database>& listing,
                              const std::map<std::string, template_expectation>& expected,
                              const std::string& client_lease_role, system_clock::time_point now) {
    reconcile_plan plan;
    std::vector<const listed_database*> templates;
    std::vector<const listed_database*> clones;
    for (const auto& db : listing) {
        if (db.invalid || !db.comment) {
            // Interrupted drops, clones whose creation never finished, or not ours after all.
            plan.drops.push_back(
                {db.name, db.invalid ? "invalid: an interrupted drop" : "no pglease comment"});
            continue;
        }
        (db.comment->what == catalog_comment::kind::template_database ? templates : clones)
            .push_back(&db);
    }

    // A client-initialized template serves its newest ready version (the highest oid).
    std::map<std::string, unsigned long> newest_oid;
    for (const auto* db : templates) {
        const auto& comment = *db->comment;
        if (comment.client && comment.phase == catalog_comment::template_phase::ready &&
            db->oid >= newest_oid[comment.template_name]) {
            newest_oid[comment.template_name] = db->oid;
            plan.client_templates[comment.template_name] = comment.fingerprint;
        }
    }
    // What each template serves and who owns its clones, as this listing settles it.
    struct known {
        bool served = false;
        bool has_settings = false;
        std::string wanted;
        std::string lease_role;
    };
    std::map<std::string, known> by_name;
    for (const auto& [name, expectation] : expected) {
        by_name[name] = {false, true, expectation.wanted_fingerprint, expectation.lease_role};
    }
    // A name the configuration gives a source of its own is not the clients' to build.
    const auto clients_may_build = [&](const std::string& name) {
        auto found = expected.find(name);
        return found == expected.end() || found->second.client;
    };
    for (const auto& [name, fingerprint] : plan.client_templates) {
        if (clients_may_build(name)) {
            by_name[name] = {false, true, fingerprint, client_lease_role};
        }
    }

    for (const auto* db : templates) {
        const auto& comment = *db->comment;
        if (comment.phase != catalog_comment::template_phase::ready) {
            plan.drops.push_back({db->name, "half-built template"});
            continue;
        }
        auto& about = by_name[comment.template_name];
        const bool serves =
            about.has_settings && !about.served && comment.fingerprint == about.wanted;
        about.served = about.served || serves;
        const bool client = comment.client && clients_may_build(comment.template_name);
        reconcile_plan::version version;
        version.template_name = comment.template_name;
        version.fingerprint = comment.fingerprint;
        version.database = db->name;
        version.client = client;
        version.serves = serves;
        version.side = client && !serves;
        version.last_leased = comment.last_leased;
        plan.versions.push_back(std::move(version));
    }

    const auto version_of = [&](const catalog_comment& comment) {
        return std::find_if(plan.versions.begin(), plan.versions.end(), [&](const auto& v) {
            return v.template_name == comment.template_name && v.fingerprint == comment.fingerprint;
        });
    };
    for (const auto* db : clones) {
        const auto& comment = *db->comment;
        const bool holds_lease =
            comment.lease && comment.lease->expires_at > now && !comment.released;
        const bool still_kept =
            comment.kept_until && *comment.kept_until > now && !comment.released;
        auto version = version_of(comment);
        if (version == plan.versions.end()) {
            if (!holds_lease && !still_kept) {
                plan.drops.push_back({db->name, "clone of a version that is gone"});
                continue;
            }
            // Its template is gone, but a worker still holds it: it stays, under a version that
            // only drains (there is no template database to drop).
            reconcile_plan::version orphaned;
            orphaned.template_name = comment.template_name;
            orphaned.fingerprint = comment.fingerprint;
            plan.versions.push_back(std::move(orphaned));
            version = std::prev(plan.versions.end());
        }
        reconcile_plan::adopted_clone adopted;
        adopted.template_name = comment.template_name;
        adopted.fingerprint = comment.fingerprint;
        adopted.database = db->name;
        if (comment.lease &&
            (!version->last_leased || comment.lease->acquired_at > *version->last_leased)) {
            version->last_leased = comment.lease->acquired_at;
        }
        if (holds_lease) {
            adopted.state = clone_state::leased;
            adopted.lease = comment.lease;
        } else if (still_kept) {
            adopted.state = clone_state::kept;
            adopted.kept_until = comment.kept_until;
        } else if (!comment.lease && !comment.kept_until && !comment.released &&
                   !comment.resetting && (version->serves || version->side)) {
            adopted.state = clone_state::idle;
        } else {
            // Released, expired while no broker ran, cut short in a reset, or of a version that
            // drains.
            adopted.state = clone_state::dropping;
        }
        // A reset cut short leaves no baseline to trust: the next reset clones again.
        if (!comment.resetting) {
            adopted.baseline = comment.baseline;
        }
        const auto& about = by_name[comment.template_name];
        if (adopted.state != clone_state::dropping && about.has_settings &&
            db->owner != about.lease_role) {
            adopted.give_to = about.lease_role;
        }
        plan.clones.push_back(std::move(adopted));
    }
    return plan;
}

}  // namespace pglease
