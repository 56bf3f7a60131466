#include "support/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <netdb.h>
#include <poll.h>
#include <stdexcept>
#include <string_view>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>
#include <utility>

#include <climits>

namespace pglease::test {

namespace {

using clock = std::chrono::steady_clock;

// A test reads small responses: anything larger is a server bug to report, not data to buffer.
constexpr std::size_t max_head_size = std::size_t{64} * 1024;
constexpr std::size_t max_body_size = std::size_t{16} * 1024 * 1024;
// Enough of a body to see what went wrong without flooding the test log.
constexpr std::size_t max_quoted_body = 4096;

class unique_fd {
  public:
    explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        reset(std::exchange(other.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

  private:
    int fd_;
};

enum class io_result { done, closed, timed_out };

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

std::string quoted_body(const std::string& body) {
    return body.size() <= max_quoted_body ? body
                                          : body.substr(0, max_quoted_body) + "... (" +
                                                std::to_string(body.size()) + " bytes)";
}

int milliseconds_until(clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

// False when `deadline` passed before `fd` became ready for `events`.
bool wait_ready(int fd, short events, clock::time_point deadline) {
    for (;;) {
        pollfd entry{fd, events, 0};
        const int ready = ::poll(&entry, 1, milliseconds_until(deadline));
        if (ready > 0) {
            return true;
        }
        if (ready == 0) {
            return false;
        }
        if (errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "poll");
        }
    }
}

unique_fd connect_to(const std::string& host, std::uint16_t port, clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
        throw std::runtime_error("getaddrinfo " + host + ": " + ::gai_strerror(rc));
    }
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
    std::string failure = "no address";
    for (const addrinfo* address = found; address != nullptr; address = address->ai_next) {
        // Non-blocking, so that every step can be bounded by the deadline with poll.
        unique_fd fd(::socket(address->ai_family,
                              address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                              address->ai_protocol));
        if (!fd.valid()) {
            failure = std::string("socket: ") + std::strerror(errno);
            continue;
        }
        if (::connect(fd.get(), address->ai_addr, address->ai_addrlen) == 0) {
            return fd;
        }
        if (errno != EINPROGRESS) {
            failure = std::strerror(errno);
            continue;
        }
        if (!wait_ready(fd.get(), POLLOUT, deadline)) {
            failure = "timed out";
            continue;
        }
        int error = 0;
        socklen_t size = sizeof error;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) {
            error = errno;
        }
        if (error == 0) {
            return fd;
        }
        failure = std::strerror(error);
    }
    throw std::runtime_error("connect to " + host + ":" + service + ": " + failure);
}

io_result send_all(int fd, std::string_view bytes, clock::time_point deadline) {
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent >= 0) {
            bytes.remove_prefix(static_cast<std::size_t>(sent));
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_ready(fd, POLLOUT, deadline)) {
                return io_result::timed_out;
            }
        } else if (errno == EPIPE || errno == ECONNRESET) {
            return io_result::closed;
        } else if (errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "send");
        }
    }
    return io_result::done;
}

// Appends what arrives next to `buffer`.
io_result read_some(int fd, std::string& buffer, clock::time_point deadline) {
    char chunk[16384];
    for (;;) {
        const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
        if (got > 0) {
            buffer.append(chunk, static_cast<std::size_t>(got));
            return io_result::done;
        }
        if (got == 0 || errno == ECONNRESET) {
            return io_result::closed;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_ready(fd, POLLIN, deadline)) {
                return io_result::timed_out;
            }
        } else if (errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "recv");
        }
    }
}

// A kept-alive connection the server closed, reset, or sent something unasked on cannot carry
// the next request.
bool stale(int fd) {
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, 0) != 0;
}

int parse_status_line(std::string_view line) {
    if (!line.starts_with("HTTP/")) {
        return 0;
    }
    const auto space = line.find(' ');
    if (space == std::string_view::npos || line.size() < space + 4) {
        return 0;
    }
    const std::string_view digits = line.substr(space + 1, 3);
    if (line.size() > space + 4 && line[space + 4] != ' ') {
        return 0;
    }
    int status = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + 3, status);
    return error == std::errc() && end == digits.data() + 3 && status >= 100 ? status : 0;
}

struct response_head {
    int status = 0;
    std::map<std::string, std::string> headers;
    std::size_t size = 0;  // bytes up to and including the blank line
};

enum class head_state { incomplete, malformed, complete };

head_state parse_head(std::string_view raw, response_head& head) {
    const auto end = raw.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        return head_state::incomplete;
    }
    head = {};
    head.size = end + 4;
    std::string_view lines = raw.substr(0, end + 2);
    const auto first = lines.find("\r\n");
    head.status = parse_status_line(lines.substr(0, first));
    if (head.status == 0) {
        return head_state::malformed;
    }
    lines.remove_prefix(first + 2);
    while (!lines.empty()) {
        const auto line_end = lines.find("\r\n");
        const std::string_view line = lines.substr(0, line_end);
        lines.remove_prefix(line_end + 2);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return head_state::malformed;
        }
        head.headers[lower(line.substr(0, colon))] = std::string(trim(line.substr(colon + 1)));
    }
    return head_state::complete;
}

std::optional<std::size_t> content_length(const response_head& head) {
    const auto found = head.headers.find("content-length");
    if (found == head.headers.end()) {
        return std::nullopt;
    }
    std::size_t length = 0;
    const std::string& text = found->second;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), length);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
        throw std::runtime_error("bad Content-Length in the response: \"" + text + "\"");
    }
    return length;
}

bool has_header(const std::map<std::string, std::string>& headers, const std::string& name) {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& header) { return lower(header.first) == name; });
}

}  // namespace

nlohmann::json http_response::json() const {
    try {
        return nlohmann::json::parse(body);
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error("the body of the HTTP " + std::to_string(status) +
                                 " response is not JSON (" + e.what() + "): " + quoted_body(body));
    }
}

std::string http_response::header(const std::string& name) const {
    const auto found = headers.find(name);
    return found == headers.end() ? std::string() : found->second;
}

struct http_client::state {
    std::string host;
    std::uint16_t port = 0;
    std::string token;
    unique_fd socket;
    // Bytes read past the end of the last response.
    std::string buffer;

    std::string format(const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::map<std::string, std::string>& headers) const {
        std::string text = method + " " + target + " HTTP/1.1\r\n";
        if (!has_header(headers, "host")) {
            const bool ipv6 = host.find(':') != std::string::npos;
            text +=
                "Host: " + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "\r\n";
        }
        if (!token.empty() && !has_header(headers, "authorization")) {
            text += "Authorization: Bearer " + token + "\r\n";
        }
        if (!body.empty() && !has_header(headers, "content-type")) {
            text += "Content-Type: application/json\r\n";
        }
        const bool sends_body = !body.empty() || (method != "GET" && method != "HEAD");
        if (sends_body && !has_header(headers, "content-length")) {
            text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        }
        for (const auto& [name, value] : headers) {
            text += name + ": " + value + "\r\n";
        }
        return text + "\r\n" + body;
    }

    // The response, or std::nullopt when the server closed the connection before answering.
    std::optional<http_response> read_response(const std::string& method, const std::string& what,
                                               clock::time_point deadline) {
        response_head head;
        bool interim = true;
        while (interim) {
            head_state parsed = parse_head(buffer, head);
            while (parsed == head_state::incomplete) {
                if (buffer.size() > max_head_size) {
                    throw std::runtime_error("the response head to " + what + " exceeds " +
                                             std::to_string(max_head_size) + " bytes");
                }
                const io_result got = read_some(socket.get(), buffer, deadline);
                if (got == io_result::timed_out) {
                    throw std::runtime_error("no complete response to " + what + " within " +
                                             std::to_string(request_timeout.count()) + " s");
                }
                if (got == io_result::closed) {
                    if (buffer.empty()) {
                        return std::nullopt;
                    }
                    throw std::runtime_error(
                        "the server closed the connection in the middle "
                        "of the response head to " +
                        what + ": " + quoted_body(buffer));
                }
                parsed = parse_head(buffer, head);
            }
            if (parsed == head_state::malformed) {
                throw std::runtime_error("malformed response head to " + what + ": " +
                                         quoted_body(buffer.substr(0, head.size)));
            }
            // A 1xx response is interim: the real one follows on the same connection.
            interim = head.status < 200;
            if (interim) {
                buffer.erase(0, head.size);
            }
        }

        std::optional<std::size_t> length;
        if (head.status == 204 || head.status == 304 || method == "HEAD") {
            length = 0;
        } else if (head.headers.contains("transfer-encoding")) {
            throw std::runtime_error("the response to " + what +
                                     " is sent with Transfer-Encoding " +
                                     head.headers["transfer-encoding"] +
                                     "; this client reads only Content-Length bodies");
        } else {
            length = content_length(head);
        }
        if (length && *length > max_body_size) {
            throw std::runtime_error("the response body to " + what + " is " +
                                     std::to_string(*length) + " bytes, over the test limit");
        }
        bool closed = false;
        while (!closed && (!length || buffer.size() < head.size + *length)) {
            if (buffer.size() > head.size + max_body_size) {
                throw std::runtime_error("the response body to " + what + " exceeds " +
                                         std::to_string(max_body_size) + " bytes");
            }
            const io_result got = read_some(socket.get(), buffer, deadline);
            if (got == io_result::timed_out) {
                throw std::runtime_error("no complete response body to " + what + " within " +
                                         std::to_string(request_timeout.count()) + " s");
            }
            closed = got == io_result::closed;
        }
        if (length && buffer.size() < head.size + *length) {
            throw std::runtime_error("the server closed the connection after " +
                                     std::to_string(buffer.size() - head.size) + " of " +
                                     std::to_string(*length) + " body bytes of the response to " +
                                     what);
        }
        const std::size_t body_size = length ? *length : buffer.size() - head.size;
        http_response response{head.status, std::move(head.headers),
                               buffer.substr(head.size, body_size)};
        buffer.erase(0, head.size + body_size);
        if (closed || !length || lower(response.header("connection")) == "close") {
            socket.reset();
            buffer.clear();
        }
        return response;
    }
};

http_client::http_client(std::string host, std::uint16_t port) : state_(std::make_unique<state>()) {
    state_->host = std::move(host);
    state_->port = port;
}

http_client::http_client(http_client&& other) noexcept = default;
http_client& http_client::operator=(http_client&& other) noexcept = default;
http_client::~http_client() = default;

void http_client::set_token(std::string token) {
    state_->token = std::move(token);
}

http_response http_client::request(const std::string& method, const std::string& target,
                                   const std::string& body,
                                   const std::map<std::string, std::string>& headers) {
    const std::string text = state_->format(method, target, body, headers);
    const std::string what = method + " " + target;
    const auto deadline = clock::now() + request_timeout;
    // A kept-alive connection may have been closed by the server between two requests (its
    // idle timeout, or after an error response): that one, and only that one, is retried.
    for (bool retried = false;; retried = true) {
        const bool reused =
            state_->socket.valid() && state_->buffer.empty() && !stale(state_->socket.get());
        if (!reused) {
            state_->buffer.clear();
            state_->socket = connect_to(state_->host, state_->port, deadline);
        }
        const io_result sent = send_all(state_->socket.get(), text, deadline);
        if (sent == io_result::timed_out) {
            state_->socket.reset();
            throw std::runtime_error("could not send " + what + " within " +
                                     std::to_string(request_timeout.count()) + " s");
        }
        if (sent == io_result::done) {
            std::optional<http_response> response;
            try {
                response = state_->read_response(method, what, deadline);
            } catch (...) {
                // What is left of a broken response must not be read as the next one.
                state_->socket.reset();
                state_->buffer.clear();
                throw;
            }
            if (response) {
                return std::move(*response);
            }
        }
        state_->socket.reset();
        state_->buffer.clear();
        if (!reused || retried) {
            throw std::runtime_error("the server closed the connection without answering " + what);
        }
    }
}

http_response http_client::get(const std::string& target) {
    return request("GET", target);
}

http_response http_client::post(const std::string& target, const nlohmann::json& body) {
    return request("POST", target, body.dump());
}

http_response http_client::put(const std::string& target, const nlohmann::json& body) {
    return request("PUT", target, body.dump());
}

http_response http_client::del(const std::string& target) {
    return request("DELETE", target);
}

std::string http_client::send_raw(const std::string& bytes, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    const unique_fd socket = connect_to(state_->host, state_->port, deadline);
    std::string received;
    if (send_all(socket.get(), bytes, deadline) == io_result::timed_out) {
        return received;
    }
    while (read_some(socket.get(), received, deadline) == io_result::done) {
    }
    return received;
}

int http_client::status_of(const std::string& raw_response) {
    return parse_status_line(std::string_view(raw_response).substr(0, raw_response.find("\r\n")));
}

std::optional<http_response> http_client::parse(const std::string& raw_response) {
    response_head head;
    if (parse_head(raw_response, head) != head_state::complete) {
        return std::nullopt;
    }
    std::size_t body_size = raw_response.size() - head.size;
    if (const auto length = content_length(head)) {
        body_size = std::min(body_size, *length);
    }
    return http_response{head.status, std::move(head.headers),
                         raw_response.substr(head.size, body_size)};
}

}  // namespace pglease::test
