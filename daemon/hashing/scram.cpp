#include "hashing/scram.hpp"

#include <array>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdexcept>

namespace pglease {
namespace {

using digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

std::string base64(const unsigned char* data, std::size_t size) {
    std::string out(4 * ((size + 2) / 3), '\0');
    const int written =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

digest hmac_sha256(const digest& key, std::string_view message) {
    digest out{};
    unsigned int size = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
             &size) == nullptr) {
        throw std::runtime_error("HMAC-SHA-256 failed");
    }
    return out;
}

}  // namespace

std::string scram_sha256_secret(std::string_view password, std::string_view salt, int iterations) {
    for (const char c : password) {
        if (c < 0x21 || c > 0x7e) {
            throw std::invalid_argument("scram_sha256_secret: password must be printable ASCII");
        }
    }
    if (iterations < 1 || salt.empty()) {
        throw std::invalid_argument("scram_sha256_secret: needs a salt and iterations >= 1");
    }
    digest salted{};
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), iterations, EVP_sha256(),
                          static_cast<int>(salted.size()), salted.data()) != 1) {
        throw std::runtime_error("PBKDF2-HMAC-SHA-256 failed");
    }
    const digest client_key = hmac_sha256(salted, "Client Key");
    digest stored_key{};
    SHA256(client_key.data(), client_key.size(), stored_key.data());
    const digest server_key = hmac_sha256(salted, "Server Key");
    return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" +
           base64(reinterpret_cast<const unsigned char*>(salt.data()), salt.size()) + "$" +
           base64(stored_key.data(), stored_key.size()) + ":" +
           base64(server_key.data(), server_key.size());
}

std::string scram_sha256_secret(std::string_view password, int iterations) {
    std::array<unsigned char, 16> salt{};
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return scram_sha256_secret(
        password, std::string_view(reinterpret_cast<const char*>(salt.data()), salt.size()),
        iterations);
}

}  // namespace pglease
