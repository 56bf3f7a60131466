#include "hashing/sha256.hpp"

#include <array>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdexcept>

namespace pglease {
namespace {

// Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up again on every init.
const EVP_MD* sha256_algorithm() {
    static const EVP_MD* const algorithm = [] {
        const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        return fetched != nullptr ? fetched : EVP_sha256();
    }();
    return algorithm;
}

std::string to_hex(const unsigned char* bytes, unsigned int length) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(std::size_t{length} * 2);
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[bytes[i] >> 4];
        out += hex[bytes[i] & 0xf];
    }
    return out;
}

}  // namespace

struct sha256_hasher::state {
    struct free_context {
        void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
    };
    std::unique_ptr<EVP_MD_CTX, free_context> context{EVP_MD_CTX_new()};
};

sha256_hasher::sha256_hasher() : state_(std::make_unique<state>()) {
    if (!state_->context ||
        EVP_DigestInit_ex(state_->context.get(), sha256_algorithm(), nullptr) != 1) {
        throw std::runtime_error("EVP_DigestInit_ex(sha256) failed");
    }
}

sha256_hasher::~sha256_hasher() = default;

void sha256_hasher::update(std::string_view data) {
    if (EVP_DigestUpdate(state_->context.get(), data.data(), data.size()) != 1) {
        throw std::runtime_error("EVP_DigestUpdate failed");
    }
}

void sha256_hasher::update_framed(std::string_view data) {
    update(std::to_string(data.size()));
    update(":");
    update(data);
}

std::string sha256_hasher::finish() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(state_->context.get(), digest.data(), &length) != 1) {
        throw std::runtime_error("EVP_DigestFinal_ex failed");
    }
    return to_hex(digest.data(), length);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (HMAC(sha256_algorithm(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
             &length) == nullptr) {
        throw std::runtime_error("HMAC-SHA-256 failed");
    }
    return to_hex(digest.data(), length);
}

std::string sha256_hex(std::string_view data) {
    sha256_hasher hasher;
    hasher.update(data);
    return hasher.finish();
}

}  // namespace pglease
