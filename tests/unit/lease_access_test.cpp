#include "pool/lease_access.hpp"

#include <gtest/gtest.h>

#include "broker/backend_endpoint.hpp"
#include "leases/lease_id.hpp"

namespace pglease {
namespace {

const std::string key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

TEST(lease_access, a_lease_role_is_named_after_the_prefix_and_the_lease_key) {
    EXPECT_EQ(lease_role_prefix("pglease_"), "pglease_lease_");
    EXPECT_EQ(lease_role_name("pglease_lease_", key), "pglease_lease_9f86d081884c7d659a2feaa0");
    // The longest prefix the configuration allows (16 bytes) still fits PostgreSQL's 63.
    EXPECT_LE(lease_role_name(lease_role_prefix("abcdefghijklmnop"), key).size(), 63U);
}

TEST(lease_access, without_a_prefix_the_endpoint_hands_out_no_role_of_its_own) {
    backend_endpoint endpoint;
    EXPECT_EQ(per_lease_role(endpoint, key), "");
    endpoint.lease_role_prefix = "ci_lease_";
    EXPECT_EQ(per_lease_role(endpoint, key), "ci_lease_9f86d081884c7d659a2feaa0");
}

// Expected value computed independently: Python's
// hmac.new(id, b"pglease lease role password", "sha256").hexdigest()[:32].
TEST(lease_access, the_password_comes_from_the_lease_id_which_only_its_holder_knows) {
    const std::string id = "0123456789abcdef0123456789abcdef";
    EXPECT_EQ(lease_role_password(id), "15748db6471ddb6e80f745086455d114");
    EXPECT_NE(lease_role_password("1" + id.substr(1)), lease_role_password(id));
    // Not what the key, which catalog comments show, would give.
    EXPECT_NE(lease_role_password(lease_key(id)), lease_role_password(id));
}

}  // namespace
}  // namespace pglease
