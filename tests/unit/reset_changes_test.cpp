// What a reset in place takes from the WAL's changes and the file nodes, without PostgreSQL.
#include "pool/reset_changes.hpp"

#include <gtest/gtest.h>

namespace pglease {
namespace {

// Oids of a small template: t1 <- t2 <- t3 by foreign keys, a lone table, a materialized view,
// an unlogged table, a sequence; t1's primary key index belongs to t1.
constexpr std::uint32_t t1 = 16400;
constexpr std::uint32_t t1_pkey = 16401;
constexpr std::uint32_t t2 = 16410;
constexpr std::uint32_t t3 = 16420;
constexpr std::uint32_t lone = 16430;
constexpr std::uint32_t view = 16440;
constexpr std::uint32_t scratch = 16450;
constexpr std::uint32_t counter = 16460;
constexpr std::uint32_t pg_class = 1259;
constexpr std::uint32_t pg_statistic = 2619;
constexpr std::uint32_t pg_attribute = 1249;

snapshot_table table(std::uint32_t oid, std::vector<std::uint32_t> referenced_by = {}) {
    snapshot_table t;
    t.oid = oid;
    t.name = "\"public\".\"t" + std::to_string(oid) + "\"";
    t.referenced_by = std::move(referenced_by);
    return t;
}

version_snapshot small_template() {
    version_snapshot s;
    s.tables = {table(t1, {t2}), table(t2, {t3}), table(t3),
                table(lone),     table(view),     table(scratch)};
    s.tables[4].materialized = true;
    s.tables[5].unlogged = true;
    snapshot_sequence seq;
    seq.oid = counter;
    seq.name = "\"public\".\"counter\"";
    s.sequences = {seq};
    for (const auto& t : s.tables) {
        s.owner_table[t.oid] = t.oid;
        s.file_nodes[t.oid] = t.oid;
    }
    s.owner_table[t1_pkey] = t1;
    s.file_nodes[t1_pkey] = t1_pkey;
    s.file_nodes[counter] = counter;
    s.statistics_catalogs = {pg_statistic};
    s.class_catalog = {pg_class};
    return s;
}

/// Every relation's file node now: as in the template unless `changed` says otherwise.
std::map<std::uint32_t, std::uint32_t> nodes_now(
    const version_snapshot& s, const std::map<std::uint32_t, std::uint32_t>& changed = {}) {
    auto now = s.file_nodes;
    for (const auto& [relation, node] : changed) {
        now[relation] = node;
    }
    return now;
}

/// File nodes to relations as the clone has them now: each relation's own node, and `extra`.
std::map<std::uint32_t, std::uint32_t> relations_of(
    const version_snapshot& s, const std::map<std::uint32_t, std::uint32_t>& extra = {}) {
    std::map<std::uint32_t, std::uint32_t> map;
    for (const auto& [relation, node] : s.file_nodes) {
        map[node] = relation;
    }
    for (const auto& [node, relation] : extra) {
        map[node] = relation;
    }
    return map;
}

wal_change heap(std::uint32_t node, std::string record = "INSERT") {
    return {node, "Heap", std::move(record)};
}

TEST(reset_changes, rows_written_touch_their_tables_and_sequences_and_unlogged_tables_always) {
    const auto s = small_template();
    const std::vector<wal_change> changes{
        heap(t1), heap(t1_pkey), heap(t2, "HOT_UPDATE"), {counter, "Sequence", "LOG"}};
    const auto touched = classify_changes(s, {}, changes, relations_of(s), nodes_now(s));
    EXPECT_FALSE(touched.reclone) << *touched.reclone;
    EXPECT_EQ(touched.tables, (std::set<std::uint32_t>{t1, t2, scratch}))
        << "an index's rows belong to its table; an unlogged table leaves no WAL";
    EXPECT_EQ(touched.sequences, (std::set<std::uint32_t>{counter}));
    EXPECT_FALSE(touched.class_rows_updated);
}

TEST(reset_changes, statistics_are_ignored_pg_class_updates_checked_other_catalogs_reclone) {
    const auto s = small_template();
    const auto stats = classify_changes(
        s, {}, {heap(pg_statistic)}, relations_of(s, {{pg_statistic, pg_statistic}}), nodes_now(s));
    EXPECT_FALSE(stats.reclone) << "ANALYZE changes no content";
    EXPECT_FALSE(stats.class_rows_updated);

    const auto truncate = classify_changes(s, {}, {heap(pg_class, "HOT_UPDATE")},
                                           relations_of(s, {{pg_class, pg_class}}), nodes_now(s));
    EXPECT_FALSE(truncate.reclone);
    EXPECT_TRUE(truncate.class_rows_updated) << "a TRUNCATE updates pg_class rows";

    const auto ddl = classify_changes(
        s, {}, {heap(pg_attribute)}, relations_of(s, {{pg_attribute, pg_attribute}}), nodes_now(s));
    ASSERT_TRUE(ddl.reclone);
    EXPECT_EQ(ddl.reclone_code, "catalog");

    const auto inserted_class_row = classify_changes(
        s, {}, {heap(pg_class, "INSERT")}, relations_of(s, {{pg_class, pg_class}}), nodes_now(s));
    EXPECT_TRUE(inserted_class_row.reclone) << "a new pg_class row is a new relation: DDL";
}

TEST(reset_changes, a_relation_the_template_lacks_or_a_dropped_one_means_cloning_again) {
    const auto s = small_template();
    const auto created =
        classify_changes(s, {}, {heap(17000)}, relations_of(s, {{17000, 17000}}), nodes_now(s));
    ASSERT_TRUE(created.reclone);
    EXPECT_EQ(created.reclone_code, "catalog");

    auto without_lone = nodes_now(s);
    without_lone.erase(lone);
    const auto dropped = classify_changes(s, {}, {}, relations_of(s), without_lone);
    ASSERT_TRUE(dropped.reclone);
    EXPECT_NE(dropped.reclone->find("dropped"), std::string::npos) << *dropped.reclone;
}

TEST(reset_changes, a_file_node_no_relation_has_now_is_left_to_the_file_node_check) {
    const auto s = small_template();
    // t3 was truncated: the WAL names its old node (no relation has it now), its node is new.
    const auto touched = classify_changes(s, {}, {heap(t3)}, relations_of(s, {{t3, 0}}),
                                          nodes_now(s, {{t3, 20001}}));
    EXPECT_FALSE(touched.reclone);
    EXPECT_TRUE(touched.tables.contains(t3)) << "its new file node shows the truncate";
}

TEST(reset_changes, a_node_a_previous_reset_gave_the_relation_is_its_expected_one) {
    const auto s = small_template();
    reset_baseline baseline;
    baseline.file_nodes[t3] = 20001;  // the last reset truncated t3
    const auto unchanged = classify_changes(s, baseline, {}, relations_of(s, {{20001, t3}}),
                                            nodes_now(s, {{t3, 20001}}));
    EXPECT_FALSE(unchanged.tables.contains(t3));
    const auto again = classify_changes(s, baseline, {}, relations_of(s, {{20002, t3}}),
                                        nodes_now(s, {{t3, 20002}}));
    EXPECT_TRUE(again.tables.contains(t3)) << "truncated again since";
    const auto sequence =
        classify_changes(s, {}, {}, relations_of(s), nodes_now(s, {{counter, 20003}}));
    EXPECT_TRUE(sequence.sequences.contains(counter))
        << "ALTER SEQUENCE … RESTART gives a new node";
}

TEST(reset_changes, a_touched_materialized_view_means_cloning_again) {
    const auto s = small_template();
    const auto touched = classify_changes(s, {}, {heap(view)}, relations_of(s), nodes_now(s));
    ASSERT_TRUE(touched.reclone);
    EXPECT_EQ(touched.reclone_code, "materialized");
}

TEST(reset_changes, a_truncate_takes_every_table_that_references_it_in_the_snapshots_order) {
    const auto s = small_template();
    EXPECT_EQ(truncate_closure(s, {t1}), (std::vector<std::uint32_t>{t1, t2, t3}))
        << "t2 references t1 and t3 references t2";
    EXPECT_EQ(truncate_closure(s, {t3, t2}), (std::vector<std::uint32_t>{t2, t3}));
    EXPECT_EQ(truncate_closure(s, {lone}), (std::vector<std::uint32_t>{lone}));
    EXPECT_TRUE(truncate_closure(s, {}).empty());
}

}  // namespace
}  // namespace pglease
