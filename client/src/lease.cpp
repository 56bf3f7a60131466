// The RAII lease: released in its destructor, optionally renewed by a thread of its own.
#include <condition_variable>
#include <mutex>

#include "pglease/client.hpp"

namespace pglease::client {

struct lease::renewer {
    std::mutex mutex;
    std::condition_variable wake;
    bool stop = false;
    std::thread thread;
};

lease::lease(const client& c, const std::string& template_name, const lease_options& options,
             bool auto_renew)
    : client_(c.base_url(), c.token()) {
    data_ = client_.acquire(template_name, options);
    if (!auto_renew) {
        return;
    }
    // Renew at a third of the TTL, on a connection of its own (a client is one thread's).
    const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(
        data_.expires_at - std::chrono::system_clock::now());
    const auto period = std::max(std::chrono::seconds(1), ttl / 3);
    renewer_ = std::make_unique<renewer>();
    renewer_->thread = std::thread(
        [this, period, base = c.base_url(), token = c.token(), id = data_.id, ttl = options.ttl]() {
            client own(base, token);
            std::unique_lock lock(renewer_->mutex);
            while (!renewer_->wake.wait_for(lock, period, [this] { return renewer_->stop; })) {
                lock.unlock();
                try {
                    own.renew(id, ttl);
                } catch (const error&) {
                    // Retried next period; the lease's own TTL is the safety net.
                }
                lock.lock();
            }
        });
}

lease::~lease() {
    stop_renewing();
    if (released_) {
        return;
    }
    try {
        client_.release(data_.id, mode_, keep_for_);
    } catch (const error&) {
        // A destructor must not throw; the lease expires at its TTL.
    }
}

reset_data lease::reset() {
    reset_data answer = client_.reset(data_.id);
    data_ = answer.lease;
    return answer;
}

void lease::release_with(release_mode mode, std::optional<std::chrono::seconds> keep_for) {
    mode_ = mode;
    keep_for_ = keep_for;
}

void lease::release() {
    stop_renewing();
    if (released_) {
        return;
    }
    client_.release(data_.id, mode_, keep_for_);
    released_ = true;
}

void lease::stop_renewing() {
    if (!renewer_) {
        return;
    }
    {
        const std::lock_guard lock(renewer_->mutex);
        renewer_->stop = true;
    }
    renewer_->wake.notify_all();
    renewer_->thread.join();
    renewer_.reset();
}

}  // namespace pglease::client
