// Catalog comments as pgleased reads them back from pg_database: any text (another tool's
// comment, a truncated one, a hostile one) is either ours or not, never a crash; and what is
// read back encodes to a comment that reads back the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "catalog/catalog_comment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto comment = pglease::decode_catalog_comment(text);
    if (!comment) {
        return 0;
    }
    const std::string again = pglease::encode_catalog_comment(*comment);
    const auto reread = pglease::decode_catalog_comment(again);
    if (!reread || pglease::encode_catalog_comment(*reread) != again) {
        __builtin_trap();  // what pgleased writes, it must read back as it was
    }
    return 0;
}
