#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pglease {

/// Every comment pglease writes on a database starts with this.
inline constexpr std::string_view catalog_comment_tag = "pglease:v1 ";

/// A lease as the catalog keeps it: never the id, only its SHA-256.
struct lease_record {
    std::string key;  // SHA-256 of the lease id
    std::string owner;
    std::map<std::string, std::string> labels;
    std::chrono::system_clock::time_point acquired_at;
    std::chrono::system_clock::time_point expires_at;
};

/// Where a clone stands since it was made or last reset: the WAL position its next reset reads
/// from, the reset's own transaction (whose records there are not a lease's), and the file nodes
/// of relations that a reset gave new files.
struct reset_baseline {
    std::string lsn;
    std::string own_xid;
    std::map<std::uint32_t, std::uint32_t> file_nodes;

    friend bool operator==(const reset_baseline&, const reset_baseline&) = default;
};

/// What the comment on a managed database says: the broker's whole state for that database.
struct catalog_comment {
    enum class kind { template_database, clone };
    enum class template_phase { building, ready };

    kind what = kind::clone;
    std::string template_name;
    std::string fingerprint;
    /// Template databases: building until the source was applied in full.
    template_phase phase = template_phase::building;
    /// Clones: the lease holding it, if any.
    std::optional<lease_record> lease;
    /// Clones kept after release for inspection: when to drop them.
    std::optional<std::chrono::system_clock::time_point> kept_until;
    /// Clones released for recycling: to be dropped, whatever else happens.
    bool released = false;
    /// Template databases built by a client through the API rather than from configuration.
    bool client = false;
    /// Clones: the baseline of their next reset in place (none: it cannot be reset).
    std::optional<reset_baseline> baseline;
    /// Clones: a reset in place is under way; cut short, it leaves a clone not to hand out.
    bool resetting = false;
    /// Template databases of client-initialized templates: when a lease last took a clone of
    /// this version (recorded coarsely), which decides when the version is evicted.
    std::optional<std::chrono::system_clock::time_point> last_leased;
};

/// The comment of a template database: ready once its source was applied in full.
catalog_comment template_comment(const std::string& template_name, const std::string& fingerprint,
                                 bool ready, bool client);

/// The comment of a clone of `template_name`'s version `fingerprint`, with no lease.
catalog_comment clone_comment(const std::string& template_name, const std::string& fingerprint,
                              std::optional<std::chrono::system_clock::time_point> kept_until);

/// The comment text: "pglease:v1 {json}".
std::string encode_catalog_comment(const catalog_comment& comment);

/// The comment parsed, or std::nullopt when it is not one of ours or is malformed.
std::optional<catalog_comment> decode_catalog_comment(std::string_view text);

}  // namespace pglease
