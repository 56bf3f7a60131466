#include "http/beast_request.hpp"

#include <cctype>

namespace pglease {

http_request to_http_request(boost::beast::http::request<boost::beast::http::string_body>& raw) {
    http_request request;
    request.method = std::string(raw.method_string());
    request.target = std::string(raw.target());
    for (const auto& field : raw) {
        std::string name(field.name_string());
        for (auto& c : name) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        request.headers[name] = std::string(field.value());
    }
    request.body = std::move(raw.body());
    return request;
}

}  // namespace pglease
