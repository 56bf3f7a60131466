#include "process/child_process.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <signal.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "support/run_async.hpp"

namespace pglease {
namespace {

using namespace std::chrono_literals;
using test::run_async;

// Alive and not a zombie waiting for whoever adopted it to reap it.
bool process_alive(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

TEST(child_process, output_and_exit_code_are_captured) {
    auto result = run_async([] {
        return run_command("/bin/sh", {"-c", "echo out; echo err >&2; exit 7"}, {}, 10s);
    });
    EXPECT_EQ(result.exit_code, 7);
    EXPECT_NE(result.output.find("out"), std::string::npos);
    EXPECT_NE(result.output.find("err"), std::string::npos);
}

TEST(child_process, environment_and_working_directory_are_applied) {
    child_options options;
    options.working_dir = std::filesystem::temp_directory_path();
    options.environment = {{"PGLEASE_TEST_VALUE", "hello world"}, {"HOME", "/nowhere"}};
    auto result = run_async([&] {
        return run_command("/bin/sh",
                           {"-c", "printf '%s|%s|%s' \"$PGLEASE_TEST_VALUE\" \"$HOME\" \"$(pwd)\""},
                           options, 10s);
    });
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_EQ(result.output, "hello world|/nowhere|" + options.working_dir.string());
}

TEST(child_process, a_command_past_its_time_is_killed_with_its_children) {
    const auto pid_file =
        std::filesystem::temp_directory_path() / ("pglease-child-" + std::to_string(::getpid()));
    const auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(run_async([&] {
                     return run_command(
                         "/bin/sh",
                         {"-c", "sleep 30 & echo $! > " + pid_file.string() + "; sleep 30"}, {},
                         500ms);
                 }),
                 command_timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    std::ifstream in(pid_file);
    int grandchild = 0;
    in >> grandchild;
    ASSERT_GT(grandchild, 0);
    // Killed with the group; give the kernel a moment to deliver, then it must be gone.
    for (int i = 0; i < 100 && process_alive(grandchild); ++i) {
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_FALSE(process_alive(grandchild)) << "a process the command started outlived its kill";
    std::filesystem::remove(pid_file);
}

TEST(child_process, a_missing_program_fails_to_start) {
    EXPECT_THROW(run_async([] { return run_command("/nonexistent/program", {}, {}, 10s); }),
                 std::system_error);
}

TEST(child_process, long_output_keeps_its_tail) {
    auto result = run_async([] {
        return run_command("/bin/sh", {"-c", "yes line | head -c 300000; echo; echo the-end"}, {},
                           10s);
    });
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_LE(result.output.size(), 64u * 1024);
    EXPECT_NE(result.output.find("the-end"), std::string::npos);
}

}  // namespace
}  // namespace pglease
