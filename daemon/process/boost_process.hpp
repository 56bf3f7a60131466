#pragma once

// Boost.Process 1.81 (v2), built on std::filesystem, uses names from these headers without
// including them; they must come first. Include this header from one source file only.
// clang-format off
#include <type_traits>
#include <boost/io/quoted.hpp>
#include <boost/optional.hpp>
#include <boost/type_traits/remove_pointer.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>
// Its header-only build leaves process_environment::on_setup undefined: define it here.
#include <boost/process/v2/impl/environment.ipp>
// clang-format on
