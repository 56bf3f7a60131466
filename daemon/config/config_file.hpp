#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/settings.hpp"

namespace pglease {

/// Reads the JSON config file `file` (an absolute path) into `s`. Returns one message per problem,
/// each naming the file and the key path; empty when the file was read cleanly.
std::vector<std::string> read_config_file(const std::filesystem::path& file, settings& s);

/// Reads a config document given as text (PGLEASE_CONFIG_JSON): `source` names it in messages,
/// and relative paths in it resolve against `base_dir`.
std::vector<std::string> read_config_text(const std::string& text, const std::string& source,
                                          const std::filesystem::path& base_dir, settings& s);

}  // namespace pglease
