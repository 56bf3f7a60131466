#pragma once

// The bridge from Beast's parsed request to the API's http_request: included only where Beast
// is (the server, the fuzz harness), so the API's own headers stay free of it.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/http_message.hpp"

namespace pglease {

/// The method, target, headers (names lower-cased) and body of `raw`; the body is moved out.
http_request to_http_request(boost::beast::http::request<boost::beast::http::string_body>& raw);

}  // namespace pglease
