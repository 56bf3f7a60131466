#include "hashing/scram.hpp"

#include <gtest/gtest.h>

namespace pglease {
namespace {

// Expected values computed independently (Python's hashlib.pbkdf2_hmac and hmac); the 4096
// one is PostgreSQL's default iteration count.
TEST(scram, secrets_match_an_independent_implementation) {
    EXPECT_EQ(scram_sha256_secret("pencil", "0123456789abcdef", 4096),
              "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"
              "nQpbZ77WudtqufPwikHXGRt6g2QJ4zns8bZLw273DRM=:"
              "jn2amWP1q1h+jgjy0YTO14S6/F02SV7taipOeB7ef20=");
    EXPECT_EQ(scram_sha256_secret("pencil", "0123456789abcdef", 16),
              "SCRAM-SHA-256$16:MDEyMzQ1Njc4OWFiY2RlZg==$"
              "j5baxYnYIG9NH96gtxGdFE58m4H4f3D/dsTbbQI8L4I=:"
              "oRW4bBOrpjjRUoy5EAvQXSZ269bGhKz8rab0IGwu4yY=");
}

TEST(scram, each_secret_gets_its_own_salt) {
    const auto a = scram_sha256_secret("pencil", generated_password_iterations);
    const auto b = scram_sha256_secret("pencil", generated_password_iterations);
    EXPECT_TRUE(a.starts_with("SCRAM-SHA-256$16:"));
    EXPECT_NE(a, b);
}

TEST(scram, passwords_that_saslprep_would_change_are_refused) {
    EXPECT_THROW(scram_sha256_secret("with space", "salt", 16), std::invalid_argument);
    EXPECT_THROW(scram_sha256_secret("caf\xc3\xa9", "salt", 16), std::invalid_argument);
    EXPECT_THROW(scram_sha256_secret("pencil", "", 16), std::invalid_argument);
    EXPECT_THROW(scram_sha256_secret("pencil", "salt", 0), std::invalid_argument);
}

}  // namespace
}  // namespace pglease
