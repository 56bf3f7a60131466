#include "catalog/catalog_comment.hpp"

#include <limits>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace pglease {
namespace {

using json = nlohmann::json;
using std::chrono::system_clock;

std::int64_t to_millis(system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

system_clock::time_point from_millis(std::int64_t ms) {
    return system_clock::time_point(std::chrono::milliseconds(ms));
}

// A whole number of `value` within [min, max]; anything else (a fraction, a number past the
// range: converting those is undefined) makes the comment not one of ours.
template <typename Int>
Int whole(const json& value, Int min = std::numeric_limits<Int>::min(),
          Int max = std::numeric_limits<Int>::max()) {
    const auto in_range = [&](auto n) {
        return std::cmp_greater_equal(n, min) && std::cmp_less_equal(n, max);
    };
    if (value.is_number_unsigned() && in_range(value.get<std::uint64_t>())) {
        return static_cast<Int>(value.get<std::uint64_t>());
    }
    if (value.is_number_integer() && !value.is_number_unsigned() &&
        in_range(value.get<std::int64_t>())) {
        return static_cast<Int>(value.get<std::int64_t>());
    }
    throw std::out_of_range("not a whole number in range: " + value.dump());
}

// Milliseconds since the epoch that system_clock's nanoseconds hold (years 1685 to 2255).
system_clock::time_point millis_field(const json& value) {
    constexpr std::int64_t limit = 9'000'000'000'000;
    return from_millis(whole<std::int64_t>(value, -limit, limit));
}

}  // namespace

std::string encode_catalog_comment(const catalog_comment& comment) {
    json body;
    body["kind"] = comment.what == catalog_comment::kind::template_database ? "template" : "clone";
    body["template"] = comment.template_name;
    body["fingerprint"] = comment.fingerprint;
    if (comment.what == catalog_comment::kind::template_database) {
        body["phase"] =
            comment.phase == catalog_comment::template_phase::ready ? "ready" : "building";
    }
    if (comment.lease) {
        body["lease"] = {{"key", comment.lease->key},
                         {"owner", comment.lease->owner},
                         {"labels", comment.lease->labels},
                         {"acquired_at_ms", to_millis(comment.lease->acquired_at)},
                         {"expires_at_ms", to_millis(comment.lease->expires_at)}};
    }
    if (comment.kept_until) {
        body["kept_until_ms"] = to_millis(*comment.kept_until);
    }
    if (comment.released) {
        body["released"] = true;
    }
    if (comment.client) {
        body["client"] = true;
    }
    if (comment.baseline) {
        json nodes = json::object();
        for (const auto& [relation, node] : comment.baseline->file_nodes) {
            nodes[std::to_string(relation)] = node;
        }
        body["reset"] = {
            {"lsn", comment.baseline->lsn}, {"xid", comment.baseline->own_xid}, {"nodes", nodes}};
    }
    if (comment.resetting) {
        body["resetting"] = true;
    }
    if (comment.last_leased) {
        body["last_leased_ms"] = to_millis(*comment.last_leased);
    }
    return std::string(catalog_comment_tag) + body.dump();
}

std::optional<catalog_comment> decode_catalog_comment(std::string_view text) {
    if (!text.starts_with(catalog_comment_tag)) {
        return std::nullopt;
    }
    const json body = json::parse(text.substr(catalog_comment_tag.size()), nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        return std::nullopt;
    }
    try {
        catalog_comment comment;
        const auto kind = body.at("kind").get<std::string>();
        if (kind == "template") {
            comment.what = catalog_comment::kind::template_database;
            comment.phase = body.value("phase", "building") == "ready"
                                ? catalog_comment::template_phase::ready
                                : catalog_comment::template_phase::building;
        } else if (kind == "clone") {
            comment.what = catalog_comment::kind::clone;
        } else {
            return std::nullopt;
        }
        comment.template_name = body.at("template").get<std::string>();
        comment.fingerprint = body.at("fingerprint").get<std::string>();
        if (const auto lease = body.find("lease"); lease != body.end()) {
            lease_record record;
            record.key = lease->at("key").get<std::string>();
            record.owner = lease->value("owner", "");
            record.labels = lease->value("labels", std::map<std::string, std::string>{});
            record.acquired_at = millis_field(lease->at("acquired_at_ms"));
            record.expires_at = millis_field(lease->at("expires_at_ms"));
            comment.lease = std::move(record);
        }
        if (const auto kept = body.find("kept_until_ms"); kept != body.end()) {
            comment.kept_until = millis_field(*kept);
        }
        comment.released = body.value("released", false);
        comment.client = body.value("client", false);
        if (const auto reset = body.find("reset"); reset != body.end()) {
            reset_baseline baseline;
            baseline.lsn = reset->at("lsn").get<std::string>();
            baseline.own_xid = reset->value("xid", "");
            const json nodes = reset->value("nodes", json::object());
            for (const auto& [relation, node] : nodes.items()) {
                baseline.file_nodes[whole<std::uint32_t>(json::parse(relation))] =
                    whole<std::uint32_t>(node);
            }
            comment.baseline = std::move(baseline);
        }
        comment.resetting = body.value("resetting", false);
        if (const auto leased = body.find("last_leased_ms"); leased != body.end()) {
            comment.last_leased = millis_field(*leased);
        }
        if (comment.template_name.empty() || comment.fingerprint.empty()) {
            return std::nullopt;
        }
        return comment;
    } catch (const json::exception&) {
        return std::nullopt;
    } catch (const std::out_of_range&) {
        return std::nullopt;
    }
}

catalog_comment template_comment(const std::string& template_name, const std::string& fingerprint,
                                 bool ready, bool client) {
    catalog_comment comment;
    comment.what = catalog_comment::kind::template_database;
    comment.template_name = template_name;
    comment.fingerprint = fingerprint;
    comment.phase =
        ready ? catalog_comment::template_phase::ready : catalog_comment::template_phase::building;
    comment.client = client;
    return comment;
}

catalog_comment clone_comment(const std::string& template_name, const std::string& fingerprint,
                              std::optional<std::chrono::system_clock::time_point> kept_until) {
    catalog_comment comment;
    comment.what = catalog_comment::kind::clone;
    comment.template_name = template_name;
    comment.fingerprint = fingerprint;
    comment.kept_until = kept_until;
    return comment;
}

}  // namespace pglease
