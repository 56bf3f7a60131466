#include "config/config_file.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <span>
#include <sstream>
#include <string_view>
#include <system_error>
#include <variant>

#include <nlohmann/json.hpp>

#include "config/config_keys.hpp"
#include "config/setting_table.hpp"
#include "json_text.hpp"

namespace pglease {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::seconds;
using namespace config_keys;

/// The sections read by code of their own rather than by the setting table.
constexpr std::array<std::string_view, 3> structured_sections{"backends", "defaults", "templates"};

/// A JSON value as the file spells it, cut short so one bad value cannot flood the message.
std::string shown(const json& value) {
    constexpr std::size_t max_shown = 60;
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > max_shown) {
        text.resize(max_shown - 3);
        text += "...";
    }
    return text;
}

std::string join_path(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

void append_listed(std::string& list, std::string_view item) {
    if (!list.empty()) {
        list += ", ";
    }
    list += item;
}

template <class T, std::size_t N>
std::string known_keys(const std::array<config_key<T>, N>& fields) {
    std::string list;
    for (const auto& f : fields) {
        append_listed(list, f.key);
    }
    return list;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return (x >= 'a' && x <= 'z' ? static_cast<char>(x - 'a' + 'A') : x) ==
               (y >= 'a' && y <= 'z' ? static_cast<char>(y - 'a' + 'A') : y);
    });
}

const setting* find_setting(std::string_view key) {
    for (const auto& s : setting_table()) {
        if (!s.key.empty() && s.key == key) {
            return &s;
        }
    }
    return nullptr;
}

/// The keys of `section` ("" for the top level) that come from the setting table.
std::string table_keys(std::string_view section) {
    std::string list;
    std::vector<std::string_view> listed;
    for (const auto& s : setting_table()) {
        const auto dot = s.key.find('.');
        if (section.empty() && !s.key.empty()) {
            const auto key = s.key.substr(0, dot);
            if (std::find(listed.begin(), listed.end(), key) == listed.end()) {
                listed.push_back(key);
                append_listed(list, key);
            }
        } else if (dot != std::string_view::npos && s.key.substr(0, dot) == section) {
            append_listed(list, s.key.substr(dot + 1));
        }
    }
    return list;
}

bool is_table_section(std::string_view key) {
    return std::any_of(setting_table().begin(), setting_table().end(), [&](const setting& s) {
        const auto dot = s.key.find('.');
        return dot != std::string_view::npos && s.key.substr(0, dot) == key;
    });
}

/// "line 3, column 14" of the 1-based byte position nlohmann's parse_error reports.
std::string position_of(std::string_view content, std::size_t byte) {
    const std::size_t offset = std::min(byte == 0 ? 0 : byte - 1, content.size());
    std::size_t line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset; ++i) {
        if (content[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

/// nlohmann's message without its "[json.exception...] parse error at ...:" preamble, which
/// repeats the position in a form that differs from ours.
std::string parse_error_detail(const json::parse_error& e) {
    const std::string_view what = e.what();
    const auto at = what.find("parse error");
    const auto colon = at == std::string_view::npos ? at : what.find(": ", at);
    return std::string(colon == std::string_view::npos ? what : what.substr(colon + 2));
}

class config_reader {
  public:
    /// `source` names the document in messages; relative paths in it resolve against `base_dir`.
    config_reader(std::string source, fs::path base_dir)
        : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

    /// Appends a problem at `key_path` ("" for the file as a whole).
    void problem(std::string_view key_path, std::string_view what) {
        std::string message = source_ + ": ";
        if (!key_path.empty()) {
            message.append(key_path).append(": ");
        }
        problems_.push_back(message.append(what));
    }

    std::vector<std::string> take_problems() { return std::move(problems_); }

    void read_root(const json& root, settings& s) {
        if (!root.is_object()) {
            problem("", "the top level must be a JSON object, got " + shown(root));
            return;
        }
        for (const auto& item : root.items()) {
            const std::string& key = item.key();
            if (std::find(structured_sections.begin(), structured_sections.end(), key) !=
                structured_sections.end()) {
                continue;
            }
            if (const setting* known = find_setting(key)) {
                read_setting(*known, item.value(), key, s);
            } else if (is_table_section(key)) {
                read_table_section(item.value(), key, s);
            } else {
                std::string keys = table_keys("");
                for (const auto section : structured_sections) {
                    append_listed(keys, section);
                }
                problem(key, "unknown key; known keys: " + keys);
            }
        }
        if (const auto it = root.find("backends"); it != root.end()) {
            read_backends(*it, s);
        }
        // Templates start from the defaults, so they are read first whatever the key order.
        if (const auto it = root.find("defaults"); it != root.end()) {
            read_object(*it, s, "defaults", defaults_keys);
        }
        if (const auto it = root.find("templates"); it != root.end()) {
            read_templates(*it, s);
        }
    }

  private:
    void read_setting(const setting& known, const json& value, const std::string& key_path,
                      settings& s) {
        std::string text;
        if (known.type == setting_type::integer) {
            if (!value.is_number_integer()) {
                problem(key_path, "expected an integer, got " + shown(value));
                return;
            }
            text = value.dump();
        } else if (known.type == setting_type::boolean) {
            if (!value.is_boolean()) {
                problem(key_path, "expected true or false, got " + shown(value));
                return;
            }
            text = value.dump();
        } else {
            if (!value.is_string()) {
                problem(key_path, "expected a string, got " + shown(value));
                return;
            }
            text = value.get<std::string>();
        }
        if (auto p = known.apply(s, text, base_dir_)) {
            problem(key_path, *p);
        }
    }

    void read_table_section(const json& value, const std::string& section, settings& s) {
        if (!value.is_object()) {
            problem(section, "expected an object, got " + shown(value));
            return;
        }
        for (const auto& item : value.items()) {
            const std::string key_path = join_path(section, item.key());
            if (const setting* known = find_setting(key_path)) {
                read_setting(*known, item.value(), key_path, s);
            } else {
                problem(key_path, "unknown key; known keys: " + table_keys(section));
            }
        }
    }

    void read_backends(const json& value, settings& s) {
        if (!value.is_array()) {
            problem("backends", "expected an array of backends, got " + shown(value));
            return;
        }
        s.backends.clear();
        for (std::size_t i = 0; i < value.size(); ++i) {
            backend_settings backend;
            read_object(value[i], backend, "backends[" + std::to_string(i) + "]", backend_keys);
            s.backends.push_back(std::move(backend));
        }
    }

    void read_templates(const json& value, settings& s) {
        if (!value.is_object()) {
            problem("templates", "expected an object of templates by name, got " + shown(value));
            return;
        }
        for (const auto& item : value.items()) {
            template_settings t;
            t.name = item.key();
            t.pool = s.default_pool;
            t.lease = s.default_lease;
            read_object(item.value(), t, "templates." + item.key(), template_keys);
            // A template naming several sources is reported by validate(); kind takes the first.
            if (!t.migrations.empty()) {
                t.kind = source_kind::migrations;
            } else if (!t.database.empty()) {
                t.kind = source_kind::database;
            } else if (!t.command.empty()) {
                t.kind = source_kind::command;
            }
            s.templates.insert_or_assign(item.key(), std::move(t));
        }
    }

    template <class T, std::size_t N>
    void read_object(const json& value, T& out, const std::string& path,
                     const std::array<config_key<T>, N>& fields) {
        if (!value.is_object()) {
            problem(path, "expected an object, got " + shown(value));
            return;
        }
        for (const auto& item : value.items()) {
            const std::string key_path = join_path(path, item.key());
            const auto known =
                std::find_if(fields.begin(), fields.end(),
                             [&](const config_key<T>& f) { return f.key == item.key(); });
            if (known == fields.end()) {
                problem(key_path, "unknown key; known keys: " + known_keys(fields));
                continue;
            }
            const json& field_value = item.value();
            std::visit(
                [&](auto member) { read_value(field_value, out.*member, key_path, known->limit); },
                known->member);
        }
    }

    std::optional<long long> integer_in(const json& value, const std::string& key_path,
                                        int_range range) {
        if (!value.is_number_integer()) {
            problem(key_path, "expected an integer, got " + shown(value));
            return std::nullopt;
        }
        long long number = 0;
        if (auto p = parse_integer(value.dump(), range, number)) {
            problem(key_path, *p);
            return std::nullopt;
        }
        return number;
    }

    std::optional<std::string> text_in(const json& value, const std::string& key_path,
                                       const key_limits& limit) {
        if (!value.is_string()) {
            problem(key_path, "expected a string, got " + shown(value));
            return std::nullopt;
        }
        const auto& text = value.get_ref<const std::string&>();
        if (!limit.choices.empty()) {
            for (const auto choice : limit.choices) {
                if (equal_ignoring_case(text, choice)) {
                    return std::string(choice);
                }
            }
            std::string choices;
            for (const auto choice : limit.choices) {
                append_listed(choices, choice);
            }
            problem(key_path, "expected one of " + choices + ", got " + shown(value));
            return std::nullopt;
        }
        const auto length = static_cast<long long>(text.size());
        if (length < limit.range.min) {
            problem(key_path, "must not be empty");
            return std::nullopt;
        }
        if (length > limit.range.max) {
            problem(key_path, "must be at most " + std::to_string(limit.range.max) +
                                  " bytes long, got " + std::to_string(length));
            return std::nullopt;
        }
        return text;
    }

    /// The path resolved against the file's directory. A path that fails `must_exist` is
    /// reported but still returned, so that later checks do not also report it missing.
    std::optional<fs::path> path_in(const json& value, const std::string& key_path,
                                    existence must_exist) {
        const auto text = text_in(value, key_path, {.range = non_empty});
        if (!text) {
            return std::nullopt;
        }
        const fs::path given(*text);
        const fs::path path = (given.is_absolute() ? given : base_dir_ / given).lexically_normal();
        if (must_exist == existence::none) {
            return path;
        }
        std::error_code ec;
        const auto status = fs::status(path, ec);
        if (status.type() == fs::file_type::not_found) {
            problem(key_path, json_quoted(path.string()) + " does not exist");
        } else if (ec) {
            problem(key_path, "cannot check " + json_quoted(path.string()) + ": " + ec.message());
        } else if (must_exist == existence::directory && !fs::is_directory(status)) {
            problem(key_path, json_quoted(path.string()) + " is not a directory");
        }
        return path;
    }

    void read_value(const json& value, int& out, const std::string& key_path,
                    const key_limits& limit) {
        if (const auto number = integer_in(value, key_path, limit.range)) {
            out = static_cast<int>(*number);
        }
    }

    void read_value(const json& value, bool& out, const std::string& key_path, const key_limits&) {
        if (!value.is_boolean()) {
            problem(key_path, "expected true or false, got " + shown(value));
            return;
        }
        out = value.get<bool>();
    }

    void read_value(const json& value, seconds& out, const std::string& key_path,
                    const key_limits& limit) {
        if (const auto number = integer_in(value, key_path, limit.range)) {
            out = seconds{*number};
        }
    }

    void read_value(const json& value, std::string& out, const std::string& key_path,
                    const key_limits& limit) {
        if (auto text = text_in(value, key_path, limit)) {
            out = std::move(*text);
        }
    }

    void read_value(const json& value, std::optional<std::string>& out, const std::string& key_path,
                    const key_limits& limit) {
        if (auto text = text_in(value, key_path, limit)) {
            out = std::move(*text);
        }
    }

    void read_value(const json& value, fs::path& out, const std::string& key_path,
                    const key_limits& limit) {
        if (auto path = path_in(value, key_path, limit.must_exist)) {
            out = std::move(*path);
        }
    }

    void read_value(const json& value, std::vector<fs::path>& out, const std::string& key_path,
                    const key_limits& limit) {
        if (!value.is_array()) {
            problem(key_path, "expected an array of paths, got " + shown(value));
            return;
        }
        out.clear();
        for (std::size_t i = 0; i < value.size(); ++i) {
            const std::string item_path = key_path + "[" + std::to_string(i) + "]";
            if (auto path = path_in(value[i], item_path, limit.must_exist)) {
                out.push_back(std::move(*path));
            }
        }
    }

    void read_value(const json& value, pool_settings& out, const std::string& key_path,
                    const key_limits&) {
        read_object(value, out, key_path, pool_keys);
    }

    void read_value(const json& value, lease_settings& out, const std::string& key_path,
                    const key_limits&) {
        read_object(value, out, key_path, lease_keys);
    }

    std::string source_;
    fs::path base_dir_;
    std::vector<std::string> problems_;
};

}  // namespace

std::vector<std::string> read_config_file(const fs::path& file, settings& s) {
    config_reader reader(file.string(), file.parent_path());
    std::error_code ec;
    const auto status = fs::status(file, ec);
    if (status.type() == fs::file_type::not_found) {
        reader.problem("", "cannot read the config file: it does not exist");
        return reader.take_problems();
    }
    if (fs::is_directory(status)) {
        reader.problem("", "cannot read the config file: it is a directory");
        return reader.take_problems();
    }
    std::ifstream in(file, std::ios::binary);
    std::ostringstream content;
    if (in) {
        content << in.rdbuf();
    }
    if (!in || in.bad()) {
        reader.problem("", "cannot read the config file: " +
                               std::error_code(errno, std::generic_category()).message());
        return reader.take_problems();
    }
    return read_config_text(content.str(), file.string(), file.parent_path(), s);
}

std::vector<std::string> read_config_text(const std::string& text, const std::string& source,
                                          const fs::path& base_dir, settings& s) {
    config_reader reader(source, base_dir);
    json root;
    try {
        root = parse_json_text(text);
    } catch (const json::parse_error& e) {
        reader.problem(
            "", "invalid JSON at " + position_of(text, e.byte) + ": " + parse_error_detail(e));
        return reader.take_problems();
    } catch (const json_number_overflow& e) {
        reader.problem(e.where(), "a number past what JSON's doubles hold");
        return reader.take_problems();
    }
    reader.read_root(root, s);
    return reader.take_problems();
}

}  // namespace pglease
