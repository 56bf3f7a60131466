#include "embedded/server_binaries.hpp"

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

namespace pglease {
namespace {

namespace fs = std::filesystem;

void make_program(const fs::path& file) {
    fs::create_directories(file.parent_path());
    std::ofstream(file) << "#!/bin/sh\n";
    fs::permissions(file, fs::perms::owner_all);
}

TEST(server_binaries, newest_version_with_both_programs_wins) {
    const fs::path root =
        fs::temp_directory_path() / ("pglease-bin-test-" + std::to_string(::getpid()));
    for (const char* version : {"9.6", "13", "15"}) {
        make_program(root / version / "bin" / "postgres");
        make_program(root / version / "bin" / "initdb");
    }
    make_program(root / "16" / "bin" / "postgres");  // no initdb: a client-only install
    make_program(root / "notes" / "bin" / "postgres");
    const auto found = newest_versioned_bin_dir(root);
    ASSERT_TRUE(found);
    EXPECT_EQ(*found, root / "15" / "bin");
    EXPECT_FALSE(holds_server_binaries(root / "16" / "bin"));
    EXPECT_FALSE(newest_versioned_bin_dir(root / "missing"));
    fs::remove_all(root);
}

TEST(server_binaries, version_is_parsed_from_postgres_output) {
    const auto version =
        parse_server_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n");
    ASSERT_TRUE(version);
    EXPECT_EQ(version->first, "15.18");
    EXPECT_EQ(version->second, 15);
    EXPECT_EQ(parse_server_version("postgres (PostgreSQL) 16devel")->second, 16);
    EXPECT_FALSE(parse_server_version("bash: postgres: not found"));
}

}  // namespace
}  // namespace pglease
