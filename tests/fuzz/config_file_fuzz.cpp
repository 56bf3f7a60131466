// The config document (a file, or PGLEASE_CONFIG_JSON) as pgleased reads it: any text gives
// settings or a list of problems, each naming where it is; then the cross-field checks run on
// what was read. Nothing may escape as an exception (pgleased would abort instead of saying
// what is wrong).
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config_file.hpp"
#include "config/settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    pglease::settings settings;
    const auto problems = pglease::read_config_text(text, "fuzz.json", "/nonexistent", settings);
    for (const auto& problem : problems) {
        if (problem.rfind("fuzz.json: ", 0) != 0) {
            __builtin_trap();  // every problem names its source
        }
    }
    if (problems.empty()) {
        pglease::validate(settings);
    }
    return 0;
}
