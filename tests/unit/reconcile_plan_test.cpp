// The reconcile plan from a catalog listing, without PostgreSQL.
#include "catalog/reconcile_plan.hpp"

#include <gtest/gtest.h>

namespace pglease {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

const system_clock::time_point now = system_clock::time_point(std::chrono::hours(500000));

listed_database template_db(unsigned long oid, const std::string& name,
                            const std::string& template_name, const std::string& fingerprint,
                            bool ready = true, bool client = false) {
    return {oid, name, false, template_comment(template_name, fingerprint, ready, client),
            "pglease_worker"};
}

listed_database clone_db(unsigned long oid, const std::string& name,
                         const std::string& template_name, const std::string& fingerprint,
                         const std::string& owner = "pglease_worker") {
    return {oid, name, false, clone_comment(template_name, fingerprint, std::nullopt), owner};
}

listed_database leased(listed_database db, system_clock::time_point expires_at) {
    lease_record record;
    record.key = "k-" + db.name;
    record.owner = "w";
    record.acquired_at = expires_at - 600s;
    record.expires_at = expires_at;
    db.comment->lease = record;
    return db;
}

std::map<std::string, template_expectation> app_wants(const std::string& fingerprint) {
    return {{"app", {false, fingerprint, "pglease_worker"}}};
}

const reconcile_plan::adopted_clone& clone_named(const reconcile_plan& plan,
                                                 const std::string& name) {
    for (const auto& c : plan.clones) {
        if (c.database == name) {
            return c;
        }
    }
    throw std::runtime_error("no clone " + name + " in the plan");
}

std::vector<std::string> dropped(const reconcile_plan& plan) {
    std::vector<std::string> names;
    for (const auto& stray : plan.drops) {
        names.push_back(stray.database);
    }
    return names;
}

TEST(reconcile_plan, strays_invalid_databases_and_half_built_templates_are_dropped_with_a_reason) {
    listed_database no_comment{10, "pglease_app_f_9", false, std::nullopt, "pglease_worker"};
    auto invalid = clone_db(11, "pglease_app_f_3", "app", "f");
    invalid.invalid = true;
    const auto half_built = template_db(12, "pglease_app_g_tpl", "app", "g", false);
    const auto plan =
        plan_reconcile({no_comment, invalid, half_built}, app_wants("f"), "pglease_worker", now);
    ASSERT_EQ(plan.drops.size(), 3u);
    EXPECT_EQ(plan.drops[0].reason, "no pglease comment");
    EXPECT_EQ(plan.drops[1].reason, "invalid: an interrupted drop");
    EXPECT_EQ(plan.drops[2].database, "pglease_app_g_tpl");
    EXPECT_EQ(plan.drops[2].reason, "half-built template");
    EXPECT_TRUE(plan.versions.empty());
    EXPECT_TRUE(plan.clones.empty());
}

TEST(reconcile_plan, the_wanted_version_serves_and_its_clones_come_back_in_their_states) {
    auto kept = clone_db(5, "pglease_app_f_4", "app", "f");
    kept.comment->kept_until = now + 60s;
    auto released = leased(clone_db(6, "pglease_app_f_5", "app", "f"), now + 60s);
    released.comment->released = true;
    const auto plan = plan_reconcile(
        {template_db(1, "pglease_app_f_tpl", "app", "f"),
         clone_db(2, "pglease_app_f_1", "app", "f"),
         leased(clone_db(3, "pglease_app_f_2", "app", "f"), now + 60s),
         leased(clone_db(4, "pglease_app_f_3", "app", "f"), now - 1s), kept, released},
        app_wants("f"), "pglease_worker", now);
    ASSERT_EQ(plan.versions.size(), 1u);
    EXPECT_TRUE(plan.versions[0].serves);
    EXPECT_EQ(plan.versions[0].database, "pglease_app_f_tpl");
    EXPECT_EQ(clone_named(plan, "pglease_app_f_1").state, clone_state::idle);
    const auto& live = clone_named(plan, "pglease_app_f_2");
    EXPECT_EQ(live.state, clone_state::leased);
    ASSERT_TRUE(live.lease);
    EXPECT_EQ(live.lease->key, "k-pglease_app_f_2");
    EXPECT_EQ(clone_named(plan, "pglease_app_f_3").state, clone_state::dropping)
        << "a lease whose TTL passed while no broker ran is over";
    EXPECT_EQ(clone_named(plan, "pglease_app_f_4").state, clone_state::kept);
    EXPECT_EQ(*clone_named(plan, "pglease_app_f_4").kept_until, now + 60s);
    EXPECT_EQ(clone_named(plan, "pglease_app_f_5").state, clone_state::dropping)
        << "a released clone is dropped, never honoured";
    EXPECT_TRUE(plan.drops.empty());
}

TEST(reconcile_plan, versions_no_configuration_wants_drain_and_their_idle_clones_go) {
    const auto plan =
        plan_reconcile({template_db(1, "pglease_app_old_tpl", "app", "old"),
                        template_db(2, "pglease_app_new_tpl", "app", "new"),
                        template_db(3, "pglease_gone_x_tpl", "gone", "x"),
                        clone_db(4, "pglease_app_old_1", "app", "old"),
                        leased(clone_db(5, "pglease_app_old_2", "app", "old"), now + 60s),
                        clone_db(6, "pglease_gone_x_1", "gone", "x")},
                       app_wants("new"), "pglease_worker", now);
    ASSERT_EQ(plan.versions.size(), 3u);
    for (const auto& v : plan.versions) {
        EXPECT_EQ(v.serves, v.fingerprint == "new") << v.database;
    }
    EXPECT_EQ(clone_named(plan, "pglease_app_old_1").state, clone_state::dropping);
    EXPECT_EQ(clone_named(plan, "pglease_app_old_2").state, clone_state::leased)
        << "a lease on a draining version is honoured";
    EXPECT_EQ(clone_named(plan, "pglease_gone_x_1").state, clone_state::dropping);
}

TEST(reconcile_plan, a_leased_clone_whose_template_is_gone_stays_under_a_version_that_drains) {
    const auto plan = plan_reconcile({leased(clone_db(1, "pglease_app_z_7", "app", "z"), now + 60s),
                                      clone_db(2, "pglease_app_z_8", "app", "z")},
                                     app_wants("f"), "pglease_worker", now);
    ASSERT_EQ(plan.versions.size(), 1u);
    EXPECT_EQ(plan.versions[0].database, "") << "no template database to drop";
    EXPECT_FALSE(plan.versions[0].serves);
    EXPECT_EQ(clone_named(plan, "pglease_app_z_7").state, clone_state::leased);
    EXPECT_EQ(clone_named(plan, "pglease_app_z_8").state, clone_state::dropping)
        << "its idle sibling goes, and the version with it once the lease ends";
    EXPECT_TRUE(plan.drops.empty());
}

TEST(reconcile_plan, a_client_template_serves_its_newest_ready_version_and_keeps_older_ones) {
    const auto plan =
        plan_reconcile({template_db(20, "pglease_suite_a_tpl", "suite", "a", true, true),
                        template_db(30, "pglease_suite_b_tpl", "suite", "b", true, true),
                        template_db(40, "pglease_suite_c_tpl", "suite", "c", false, true),
                        clone_db(41, "pglease_suite_b_1", "suite", "b"),
                        clone_db(42, "pglease_suite_a_1", "suite", "a")},
                       {}, "pglease_worker", now);
    EXPECT_EQ(plan.client_templates.at("suite"), "b") << "highest oid among ready versions";
    std::map<std::string, bool> serves;
    std::map<std::string, bool> side;
    for (const auto& v : plan.versions) {
        EXPECT_TRUE(v.client);
        serves[v.fingerprint] = v.serves;
        side[v.fingerprint] = v.side;
    }
    EXPECT_EQ(serves, (std::map<std::string, bool>{{"a", false}, {"b", true}}));
    EXPECT_EQ(side, (std::map<std::string, bool>{{"a", true}, {"b", false}}))
        << "an older ready version stays side by side, leased by its fingerprint";
    EXPECT_EQ(clone_named(plan, "pglease_suite_b_1").state, clone_state::idle);
    EXPECT_EQ(clone_named(plan, "pglease_suite_a_1").state, clone_state::idle);
    EXPECT_EQ(dropped(plan), std::vector<std::string>{"pglease_suite_c_tpl"});
}

TEST(reconcile_plan, a_configured_name_is_not_taken_over_by_a_clients_version) {
    const auto plan = plan_reconcile({template_db(1, "pglease_app_c_tpl", "app", "c", true, true)},
                                     app_wants("f"), "pglease_worker", now);
    ASSERT_EQ(plan.versions.size(), 1u);
    EXPECT_FALSE(plan.versions[0].client);
    EXPECT_FALSE(plan.versions[0].serves);
}

TEST(reconcile_plan, adopted_clones_owned_by_another_role_are_given_to_the_lease_role) {
    std::map<std::string, template_expectation> expected{{"ext", {false, "f", "palace"}}};
    const auto plan =
        plan_reconcile({template_db(1, "pglease_ext_f_tpl", "ext", "f"),
                        clone_db(2, "pglease_ext_f_1", "ext", "f", "pglease_worker"),
                        clone_db(3, "pglease_ext_f_2", "ext", "f", "palace"),
                        leased(clone_db(4, "pglease_ext_f_3", "ext", "f", "someone"), now + 60s)},
                       expected, "pglease_worker", now);
    EXPECT_EQ(clone_named(plan, "pglease_ext_f_1").give_to, "palace");
    EXPECT_EQ(clone_named(plan, "pglease_ext_f_2").give_to, "");
    EXPECT_EQ(clone_named(plan, "pglease_ext_f_3").give_to, "palace");
}

}  // namespace
}  // namespace pglease
