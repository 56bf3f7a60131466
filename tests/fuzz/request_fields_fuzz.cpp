// A request body as the API reads it: parsed, each field taken the way the acquire, renew and
// PUT handlers take theirs, then unknown fields refused. Anything but a 400 api_error (or
// success) escaping is a bug: the server would answer 500.
#include <cstddef>
#include <cstdint>
#include <string>

#include "http/api_error.hpp"
#include "http/request_fields.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    try {
        pglease::request_fields fields(body);
        fields.integer("ttl_seconds", 1, 3600);
        fields.integer("wait_seconds", 0, 600);
        fields.text("owner", 200);
        fields.text("fingerprint", 128);
        fields.labels("labels", 32, 64, 256);
        fields.reject_unknown();
    } catch (const pglease::api_error& e) {
        if (e.status() != 400) {
            __builtin_trap();
        }
    }
    try {
        for (const auto& [name, value] : pglease::parse_query(body)) {
            pglease::query_integer(name, value, 1, 86400);
        }
    } catch (const pglease::api_error& e) {
        if (e.status() != 400) {
            __builtin_trap();
        }
    }
    return 0;
}
