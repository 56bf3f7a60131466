#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace pglease {

/// The .sql files directly in `dir`, in lexical order of their names. Throws
/// std::runtime_error when the directory cannot be read.
std::vector<std::filesystem::path> migration_files(const std::filesystem::path& dir);

/// SHA-256 over the names and contents of the migration files of `dir`, in order.
std::string migrations_fingerprint(const std::filesystem::path& dir);

/// SHA-256 over the command text and the names and contents of every regular file under the
/// `watch` paths (directories recursively, in sorted order). Missing paths count as absent.
std::string command_fingerprint(const std::string& command,
                                const std::vector<std::filesystem::path>& watch);

/// A cheap summary (paths, sizes, modification times) of the files under `paths`, to notice a
/// change without reading contents.
std::string change_stamp(const std::vector<std::filesystem::path>& paths);

}  // namespace pglease
