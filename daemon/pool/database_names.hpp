#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pglease {

/// The first 8 hex characters of a fingerprint, as used in database names.
std::string short_fingerprint(std::string_view fingerprint);

/// Name of the template database of a version: "<prefix><template>_<fp8>_tpl".
std::string template_database_name(std::string_view prefix, std::string_view template_name,
                                   std::string_view fingerprint);

/// Name of a clone: "<prefix><template>_<fp8>_<sequence>". With a prefix of at most 16 bytes
/// and a template name of at most 27, every name fits PostgreSQL's 63 bytes.
std::string clone_database_name(std::string_view prefix, std::string_view template_name,
                                std::string_view fingerprint, std::uint32_t sequence);

/// The sequence number at the end of a clone's name, or 0 when there is none.
std::uint32_t clone_sequence(std::string_view database_name) noexcept;

}  // namespace pglease
