#pragma once

#include <string>
#include <vector>

namespace pglease::test {

/// True when `pid` runs (a zombie waiting to be reaped does not count).
bool process_alive(int pid);

/// Pids of live processes whose command line contains `text`.
std::vector<int> processes_mentioning(const std::string& text);

/// The real uid `pid` runs as, or -1 when it is gone.
int process_uid(int pid);

}  // namespace pglease::test
