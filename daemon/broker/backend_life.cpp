#include "broker/backend_life.hpp"

#include <boost/asio/co_spawn.hpp>

#include "logging.hpp"

namespace pglease {

void spawn_background(const boost::asio::any_io_executor& executor, backend_life& life,
                      boost::asio::awaitable<void> task, std::string backend, std::string what,
                      std::function<void()> done) {
    ++life.background_tasks;
    boost::asio::co_spawn(executor, std::move(task),
                          [&life, backend = std::move(backend), what = std::move(what),
                           done = std::move(done)](const std::exception_ptr& failure) {
                              --life.background_tasks;
                              if (failure) {
                                  try {
                                      std::rethrow_exception(failure);
                                  } catch (const std::exception& e) {
                                      warn_limited(what + "_failed backend=" + backend,
                                                   "backend={} {} failed: {}", backend, what,
                                                   e.what());
                                  }
                              }
                              if (done) {
                                  done();
                              }
                          });
}

}  // namespace pglease
