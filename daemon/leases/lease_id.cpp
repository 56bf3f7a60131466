#include "leases/lease_id.hpp"

#include <array>
#include <cerrno>
#include <sys/random.h>
#include <system_error>

#include "hashing/sha256.hpp"

namespace pglease {

std::string new_lease_id() {
    std::array<unsigned char, 16> bytes{};
    std::size_t filled = 0;
    while (filled < bytes.size()) {
        const ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        filled += static_cast<std::size_t>(n);
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string id;
    id.reserve(32);
    for (const unsigned char byte : bytes) {
        id += hex[byte >> 4];
        id += hex[byte & 0xf];
    }
    return id;
}

bool is_lease_id(std::string_view text) noexcept {
    if (text.size() != 32) {
        return false;
    }
    for (const char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

std::string lease_key(std::string_view id) {
    return sha256_hex(id);
}

std::string lease_role_password(std::string_view id) {
    return hmac_sha256_hex(id, "pglease lease role password").substr(0, 32);
}

}  // namespace pglease
