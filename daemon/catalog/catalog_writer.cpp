#include "catalog/catalog_writer.hpp"

#include <vector>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pg/connection_pool.hpp"
#include "pg/pg_error.hpp"
#include "pool/session_ender.hpp"

namespace pglease {

namespace asio = boost::asio;

namespace {

// Enough to empty the queue of a busy broker in one round trip, small enough to stay one packet
// or two.
constexpr std::size_t max_batch = 64;

// SQLSTATE of the fence's division: see catalog_writer::fence.
constexpr std::string_view division_by_zero = "22012";

std::string comment_statement(pg::connection& conn, const std::string& database,
                              const std::string& text) {
    return "COMMENT ON DATABASE " + conn.quote_identifier(database) + " IS " +
           conn.quote_literal(text);
}

}  // namespace

// The statements of `batch` as one query: its comments, then the signal to the sessions of
// those that asked for it (the query's result lists them).
std::string catalog_writer::batch_query(pg::connection& conn,
                                        const std::vector<pending*>& batch) const {
    std::string statements = fence_;
    std::string ending;
    for (const auto* p : batch) {
        if (p->also) {
            statements += p->also(conn);
        }
        statements += comment_statement(conn, p->database, p->text) + ";\n";
        if (p->end_sessions) {
            ending += (ending.empty() ? "" : ", ") + conn.quote_literal(p->database);
        }
    }
    if (!ending.empty()) {
        statements += session_ender::signal_statement(ending);
    }
    return statements;
}

// Hands the sessions each database's signal reached to the writes that asked.
void catalog_writer::note_signaled(const pg::result& rows, const std::vector<pending*>& batch) {
    for (std::size_t row = 0; row < rows.rows(); ++row) {
        for (auto* p : batch) {
            if (p->end_sessions && p->database == rows.value(row, 0)) {
                p->had_sessions = true;
            }
        }
    }
}

void catalog_writer::fence(std::int64_t key, std::function<void()> lost) {
    // The broker's lock session holds advisory lock `key` exclusively as long as it lives (and
    // with it the backend's lock). Taking it shared here succeeds only once that session is gone:
    // then the division by zero aborts the batch's transaction before any comment commits (the
    // shared lock goes with the transaction). One lock-manager call, no catalog scan.
    fence_ =
        "SELECT 1 / (NOT pg_try_advisory_xact_lock_shared(" + std::to_string(key) + "))::int;\n";
    lost_ = std::move(lost);
}

catalog_writer::catalog_writer(asio::any_io_executor executor, pg::connection_pool& connections,
                               std::size_t writers, backend_life& life, std::string backend)
    : executor_(std::move(executor)),
      connections_(connections),
      writers_(writers),
      life_(life),
      backend_(std::move(backend)) {}

asio::awaitable<bool> catalog_writer::write(std::string database, catalog_comment comment,
                                            bool end_sessions, statements also) {
    // Filled in member by member: GCC 12 miscompiles aggregate initialization in coroutines.
    pending me(executor_);
    me.database = std::move(database);
    me.text = encode_catalog_comment(comment);
    me.also = std::move(also);
    me.end_sessions = end_sessions;
    queue_.push_back(&me);
    if (flushing_ < writers_) {
        ++flushing_;
        spawn_background(executor_, life_, flush(), backend_, "catalog write");
    }
    if (!me.finished) {
        boost::system::error_code ignored;
        co_await me.done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    if (me.failure) {
        std::rethrow_exception(me.failure);
    }
    co_return me.had_sessions;
}

asio::awaitable<void> catalog_writer::flush() {
    while (!queue_.empty()) {
        std::vector<pending*> batch;
        while (!queue_.empty() && batch.size() < max_batch) {
            batch.push_back(queue_.front());
            queue_.pop_front();
        }
        try {
            auto conn = co_await connections_.acquire();
            // Several statements in one query run as one transaction: one round trip, one
            // commit. When one fails nothing is written, and each is tried alone.
            bool one_by_one = false;
            std::string query = batch_query(*conn, batch);
            try {
                note_signaled(co_await conn->exec(std::move(query)), batch);
                for (pending* p : batch) {
                    p->finished = true;
                }
            } catch (const pg::server_error& e) {
                if (!fence_.empty() && e.sqlstate() == division_by_zero) {
                    throw fenced_error("backend " + backend_ +
                                       ": this broker no longer holds the backend's lock "
                                       "(another broker may serve it now); nothing was written");
                }
                if (batch.size() == 1) {
                    batch[0]->failure = std::current_exception();
                    batch[0]->finished = true;
                }
                one_by_one = batch.size() > 1;
            }
            for (pending* p : batch) {
                if (!one_by_one) {
                    break;
                }
                // Built outside the co_await expression: GCC 12 miscompiles braced lists there.
                const std::vector<pending*> alone(1, p);
                std::string query = batch_query(*conn, alone);
                try {
                    note_signaled(co_await conn->exec(std::move(query)), alone);
                } catch (const pg::server_error&) {
                    p->failure = std::current_exception();
                }
                p->finished = true;
            }
        } catch (const fenced_error&) {
            for (pending* p : batch) {
                p->failure = std::current_exception();
                p->finished = true;
            }
            if (lost_) {
                lost_();
            }
        } catch (const pg::pg_error&) {
            // The connection failed: what was not written yet fails with it.
            for (pending* p : batch) {
                if (!p->finished) {
                    p->failure = std::current_exception();
                    p->finished = true;
                }
            }
        }
        for (pending* p : batch) {
            p->done.cancel();
        }
    }
    --flushing_;
}

}  // namespace pglease
