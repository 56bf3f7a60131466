#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include <gtest/gtest.h>

#include "broker/lease_types.hpp"
#include "catalog/catalog_comment.hpp"
#include "hashing/sha256.hpp"
#include "leases/lease_id.hpp"
#include "pool/database_names.hpp"
#include "pool/template_pool.hpp"
#include "templates/fingerprint.hpp"

namespace pglease {
namespace {

namespace fs = std::filesystem;
using std::chrono::system_clock;

TEST(sha256, matches_known_digests) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hasher a;
    a.update_framed("ab");
    a.update_framed("c");
    sha256_hasher b;
    b.update_framed("a");
    b.update_framed("bc");
    EXPECT_NE(a.finish(), b.finish());
}

TEST(lease_id, ids_are_128_random_bits_in_hex_and_stored_only_as_a_hash) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const auto id = new_lease_id();
        EXPECT_TRUE(is_lease_id(id)) << id;
        EXPECT_TRUE(seen.insert(id).second) << "duplicate id " << id;
    }
    EXPECT_FALSE(is_lease_id("ABCDEF0123456789abcdef0123456789"));
    EXPECT_FALSE(is_lease_id("abc"));
    const auto id = new_lease_id();
    EXPECT_EQ(lease_key(id), sha256_hex(id));
    EXPECT_EQ(lease_key(id).find(id), std::string::npos);
}

TEST(database_names, always_fit_in_63_bytes_and_carry_the_sequence) {
    const std::string prefix(16, 'p');
    const std::string longest_template(27, 't');
    const std::string fingerprint(64, 'f');
    const auto clone = clone_database_name(prefix, longest_template, fingerprint, 4294967295u);
    EXPECT_LE(clone.size(), 63u);
    EXPECT_EQ(clone_sequence(clone), 4294967295u);
    EXPECT_LE(template_database_name(prefix, longest_template, fingerprint).size(), 63u);
    EXPECT_EQ(clone_database_name("pglease_", "app", "1a2b3c4d5e", 17), "pglease_app_1a2b3c4d_17");
    EXPECT_EQ(template_database_name("pglease_", "app", "1a2b3c4d5e"), "pglease_app_1a2b3c4d_tpl");
    EXPECT_EQ(clone_sequence("pglease_app_1a2b3c4d_tpl"), 0u);
    EXPECT_THROW(
        clone_database_name(prefix + "x", longest_template + "x", fingerprint, 4294967295u),
        std::logic_error);
}

TEST(catalog_comment, a_leased_clone_round_trips_without_its_id) {
    catalog_comment comment;
    comment.what = catalog_comment::kind::clone;
    comment.template_name = "app";
    comment.fingerprint = "abc123";
    lease_record lease;
    lease.key = lease_key("secret-id");
    lease.owner = "worker-3";
    lease.labels = {{"suite", "api"}, {"quote", "it's \"x\""}};
    lease.acquired_at = system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
    lease.expires_at = lease.acquired_at + std::chrono::seconds(600);
    comment.lease = lease;
    const auto text = encode_catalog_comment(comment);
    EXPECT_TRUE(text.starts_with("pglease:v1 {"));
    EXPECT_EQ(text.find("secret-id"), std::string::npos);
    const auto back = decode_catalog_comment(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->what, catalog_comment::kind::clone);
    EXPECT_EQ(back->template_name, "app");
    ASSERT_TRUE(back->lease);
    EXPECT_EQ(back->lease->key, lease.key);
    EXPECT_EQ(back->lease->labels, lease.labels);
    EXPECT_EQ(back->lease->expires_at, lease.expires_at);
    EXPECT_FALSE(back->released);
}

TEST(catalog_comment, foreign_or_broken_comments_are_not_ours) {
    EXPECT_FALSE(decode_catalog_comment("production database, do not touch"));
    EXPECT_FALSE(decode_catalog_comment("pglease:v1 {not json"));
    EXPECT_FALSE(decode_catalog_comment("pglease:v1 {\"kind\":\"clone\"}"));
    EXPECT_FALSE(decode_catalog_comment(
        "pglease:v1 {\"kind\":\"other\",\"template\":\"a\",\"fingerprint\":\"b\"}"));
    EXPECT_FALSE(decode_catalog_comment("pglease:v2 {}"));
    catalog_comment tpl;
    tpl.what = catalog_comment::kind::template_database;
    tpl.template_name = "app";
    tpl.fingerprint = "f";
    tpl.phase = catalog_comment::template_phase::ready;
    const auto back = decode_catalog_comment(encode_catalog_comment(tpl));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->phase, catalog_comment::template_phase::ready);
}

// Found by tests/fuzz: numbers a comment may hold that no field can take (a fraction, a value
// past the field's range, a time past what the clock holds) made the comment's reading
// undefined or throw; such a comment is not ours.
TEST(catalog_comment, numbers_no_field_can_hold_make_a_comment_not_ours) {
    const std::string head = R"(pglease:v1 {"kind":"clone","template":"a","fingerprint":"b",)";
    const auto lease = [&](const std::string& acquired) {
        return head + R"("lease":{"key":"k","acquired_at_ms":)" + acquired +
               R"(,"expires_at_ms":1}})";
    };
    EXPECT_TRUE(decode_catalog_comment(lease("1764590000000")));
    EXPECT_FALSE(decode_catalog_comment(lease("3.52918e+23")));
    EXPECT_FALSE(decode_catalog_comment(lease("1.5")));
    EXPECT_FALSE(decode_catalog_comment(lease("10764590000000")));  // past the year 2255
    EXPECT_FALSE(decode_catalog_comment(lease("18446744073709551615")));
    EXPECT_FALSE(decode_catalog_comment(head + R"("kept_until_ms":-1e300})"));
    const auto nodes = [&](const std::string& entry) {
        return head + R"("reset":{"lsn":"0/1","nodes":{)" + entry + "}}}";
    };
    EXPECT_TRUE(decode_catalog_comment(nodes(R"("16390":16401)")));
    EXPECT_FALSE(decode_catalog_comment(nodes(R"("x":16401)")));
    EXPECT_FALSE(decode_catalog_comment(nodes(R"("99999999999":1)")));
    EXPECT_FALSE(decode_catalog_comment(nodes(R"("1":-1)")));
    EXPECT_FALSE(decode_catalog_comment(nodes(R"("1":4294967296)")));
}

TEST(template_pool, counts_follow_moves_and_never_drift) {
    template_pool pool("app", "f00d", "pglease_app_f00d_tpl");
    clone& a = pool.add("a", clone_state::creating);
    clone& b = pool.add("b", clone_state::creating);
    EXPECT_EQ(pool.count(clone_state::creating), 2u);
    pool.move(a, clone_state::idle);
    pool.move(b, clone_state::idle);
    EXPECT_EQ(pool.oldest_idle(), &a);
    pool.move(a, clone_state::leased);
    a.lease_key = "k";
    pool.move(a, clone_state::dropping);
    EXPECT_TRUE(a.lease_key.empty());
    EXPECT_EQ(pool.count(clone_state::idle), 1u);
    EXPECT_EQ(pool.count(clone_state::dropping), 1u);
    EXPECT_EQ(pool.size(), 2u) << "a clone being dropped is still a database";
    pool.remove(a);
    EXPECT_EQ(pool.size(), 1u);
    EXPECT_EQ(pool.find("a"), nullptr);
    EXPECT_THROW(pool.add("b", clone_state::idle), std::logic_error);
    pool.note_sequence(41);
    EXPECT_EQ(pool.next_sequence(), 42u);
}

TEST(fingerprint, migrations_are_ordered_by_name_and_any_change_shows) {
    const fs::path dir = fs::temp_directory_path() / ("pglease-fp-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "0002_b.sql") << "select 2;";
    std::ofstream(dir / "0001_a.sql") << "select 1;";
    std::ofstream(dir / "notes.txt") << "ignored";
    const auto files = migration_files(dir);
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(files[0].filename(), "0001_a.sql");
    const auto before = migrations_fingerprint(dir);
    EXPECT_EQ(migrations_fingerprint(dir), before);
    std::ofstream(dir / "notes.txt") << "still ignored";
    EXPECT_EQ(migrations_fingerprint(dir), before);
    std::ofstream(dir / "0002_b.sql") << "select 3;";
    EXPECT_NE(migrations_fingerprint(dir), before);
    EXPECT_NE(command_fingerprint("migrate up", {dir}), command_fingerprint("migrate down", {dir}));
    EXPECT_THROW(migration_files(dir / "missing"), std::runtime_error);
    fs::remove_all(dir);
}

TEST(lease_info, dsn_is_a_valid_uri_with_escaped_parts) {
    lease_info lease;
    lease.user = "pglease_worker";
    lease.password = "p@ss/w:rd";
    lease.host = "127.0.0.1";
    lease.port = 5433;
    lease.database = "pglease_app_1a2b3c4d_7";
    EXPECT_EQ(lease.dsn(),
              "postgresql://pglease_worker:p%40ss%2Fw%3Ard@127.0.0.1:5433/pglease_app_1a2b3c4d_7");
    lease.host = "/run/pg";
    EXPECT_EQ(lease.dsn(),
              "postgresql://pglease_worker:p%40ss%2Fw%3Ard@:5433/"
              "pglease_app_1a2b3c4d_7?host=%2Frun%2Fpg");
}

}  // namespace
}  // namespace pglease
