#include "embedded/data_dir.hpp"

#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>

namespace pglease {
namespace {

namespace fs = std::filesystem;

TEST(data_dir, configured_directory_wins_and_is_on_disk) {
    const storage_probe roomy_ram{true, true, 8ull << 30};
    const auto choice =
        choose_data_dir(fs::path("/srv/pg"), "/dev/shm", roomy_ram, 1000, ".pglease");
    EXPECT_EQ(choice.path, "/srv/pg");
    EXPECT_FALSE(choice.ram_backed);
}

TEST(data_dir, ram_backed_shm_with_room_is_the_default) {
    const storage_probe roomy_ram{true, true, 8ull << 30};
    const auto choice = choose_data_dir(std::nullopt, "/dev/shm", roomy_ram, 1000, ".pglease");
    EXPECT_EQ(choice.path, "/dev/shm/pglease-1000");
    EXPECT_TRUE(choice.ram_backed);
}

TEST(data_dir, small_or_missing_or_disk_shm_falls_back_to_disk) {
    const storage_probe small_ram{true, true, 64ull << 20};
    const storage_probe missing{};
    const storage_probe disk{true, false, 8ull << 30};
    for (const auto& [probe, why] :
         {std::pair{small_ram, "less than 512 MiB"}, std::pair{missing, "does not exist"},
          std::pair{disk, "not RAM-backed"}}) {
        const auto choice = choose_data_dir(std::nullopt, "/dev/shm", probe, 0, ".pglease");
        EXPECT_EQ(choice.path, ".pglease");
        EXPECT_FALSE(choice.ram_backed);
        EXPECT_NE(choice.reason.find(why), std::string::npos) << choice.reason;
    }
}

TEST(data_dir, probe_of_a_missing_path_says_so) {
    EXPECT_FALSE(probe_storage("/nonexistent/pglease/probe").exists);
    const auto tmp = probe_storage(fs::temp_directory_path());
    EXPECT_TRUE(tmp.exists);
    EXPECT_GT(tmp.available_bytes, 0u);
}

TEST(data_dir, second_lock_fails_naming_the_holder_until_the_first_is_gone) {
    const fs::path dir =
        fs::temp_directory_path() / ("pglease-lock-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path file = dir / "pgleased.lock";
    {
        data_dir_lock first(file);
        try {
            data_dir_lock second(file);
            ADD_FAILURE() << "a second lock on the same directory was granted";
        } catch (const std::runtime_error& e) {
            const std::string message = e.what();
            EXPECT_NE(message.find("in use by another pgleased"), std::string::npos) << message;
            EXPECT_NE(message.find("pid " + std::to_string(::getpid())), std::string::npos)
                << message;
        }
    }
    EXPECT_NO_THROW(data_dir_lock again(file));
    fs::remove_all(dir);
}

}  // namespace
}  // namespace pglease
