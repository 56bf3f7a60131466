#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pglease {

/// An HTTP request as the API sees it, free of the server's types.
struct http_request {
    std::string method;
    std::string target;
    /// Header names lower-cased.
    std::map<std::string, std::string> headers;
    std::string body;

    /// The value of header `name` (lower-case), or "".
    std::string header(const std::string& name) const {
        auto found = headers.find(name);
        return found == headers.end() ? std::string() : found->second;
    }
};

/// An HTTP response as the API produces it.
struct http_response {
    int status = 200;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    /// Run when the answer cannot reach the client: it closed its connection before the answer
    /// was written, or the write failed. What the answer handed out is taken back there.
    std::function<void()> undelivered;
};

}  // namespace pglease
