#pragma once

// Turns what the catalog says (pg_database and the comments on the databases with the prefix)
// into a plan: which template versions and clones to adopt, in which state, and what to drop.
// A pure function: the shard reads the listing and applies the plan.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catalog/catalog_comment.hpp"
#include "pool/template_pool.hpp"

namespace pglease {

/// One database with the prefix, as pg_database and its comment show it.
struct listed_database {
    unsigned long oid = 0;
    std::string name;
    /// datconnlimit = -2: a drop was interrupted.
    bool invalid = false;
    /// std::nullopt: no comment, or not one of ours.
    std::optional<catalog_comment> comment;
    std::string owner;
};

/// What the configuration says of a template before the catalog is read.
struct template_expectation {
    /// Built by clients rather than from a configured source.
    bool client = false;
    /// The version its source asks for ("" when unknown).
    std::string wanted_fingerprint;
    /// The role its clones belong to.
    std::string lease_role;
};

struct reconcile_plan {
    /// A template version to adopt: serving leases, or draining.
    struct version {
        std::string template_name;
        std::string fingerprint;
        /// "" for a version whose template database is gone while a clone is still leased.
        std::string database;
        bool client = false;
        bool serves = false;
        /// An older version of a client-initialized template: it serves leases that name it,
        /// side by side with the newest.
        bool side = false;
        /// When a lease last took one of its clones, as far as the catalog knows.
        std::optional<std::chrono::system_clock::time_point> last_leased;
    };
    /// A clone to adopt, in the state it comes back in (dropping: to be dropped).
    struct adopted_clone {
        std::string template_name;
        std::string fingerprint;
        std::string database;
        clone_state state = clone_state::idle;
        std::optional<lease_record> lease;
        std::optional<std::chrono::system_clock::time_point> kept_until;
        /// The role it must be given: it belongs to another one ("" when it is right).
        std::string give_to;
        /// Where its next reset in place starts from (none: it can only be cloned again).
        std::optional<reset_baseline> baseline;
    };
    /// A database to drop, and why.
    struct stray {
        std::string database;
        std::string reason;
    };

    std::vector<version> versions;
    /// Client-initialized templates the catalog names: the version each serves (the newest).
    std::map<std::string, std::string> client_templates;
    std::vector<adopted_clone> clones;
    std::vector<stray> drops;
};

/// The plan for `listing`, given the configured templates (`expected`, by name) and the role
/// clients' templates hand out. Leases and keeps past `now` are over.
reconcile_plan plan_reconcile(const std::vector<listed_database>& listing,
                              const std::map<std::string, template_expectation>& expected,
                              const std::string& client_lease_role,
                              std::chrono::system_clock::time_point now);

}  // namespace pglease
