#include "bench/bench_database.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pglease::bench {

namespace fs = std::filesystem;

pg_connection connect(const std::string& conninfo) {
    pg_connection conn(PQconnectdb(conninfo.c_str()), &PQfinish);
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
        throw std::runtime_error("connect: " +
                                 std::string(conn ? PQerrorMessage(conn.get()) : "out of memory"));
    }
    // DROP SCHEMA … CASCADE lists every object it drops: not for the terminal.
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
    return conn;
}

std::string exec(PGconn* conn, const std::string& sql) {
    if (PQsendQuery(conn, sql.c_str()) == 0) {
        throw std::runtime_error(PQerrorMessage(conn));
    }
    std::string value;
    std::string failure;
    while (PGresult* result = PQgetResult(conn)) {
        const ExecStatusType status = PQresultStatus(result);
        if (status == PGRES_FATAL_ERROR && failure.empty()) {
            failure = PQresultErrorMessage(result);
        } else if (status == PGRES_TUPLES_OK) {
            value = PQntuples(result) > 0 ? PQgetvalue(result, 0, 0) : "";
        }
        PQclear(result);
    }
    if (!failure.empty()) {
        const std::string head = sql.substr(0, sql.find('\n'));
        throw std::runtime_error(head.substr(0, 80) + ": " + failure);
    }
    return value;
}

namespace {

// t1 .. t<count>, each pointing at the one before; t1 points at itself.
std::string chained_tables(int count) {
    std::ostringstream sql;
    for (int i = 1; i <= count; ++i) {
        const int parent = i > 1 ? i - 1 : 1;
        sql << "CREATE TABLE t" << i << " (id bigserial PRIMARY KEY, parent bigint REFERENCES t"
            << parent
            << " (id), name text NOT NULL, kind int NOT NULL DEFAULT 0, "
               "created timestamptz NOT NULL DEFAULT now(), updated timestamptz);\n"
            << "CREATE INDEX t" << i << "_name ON t" << i << " (name);\n"
            << "CREATE INDEX t" << i << "_parent ON t" << i << " (parent);\n";
    }
    sql << "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
           "BEGIN\n  NEW.updated := now();\n  RETURN NEW;\nEND\n$$;\n"
           "CREATE TRIGGER t2_touch BEFORE INSERT OR UPDATE ON t2 FOR EACH ROW "
           "EXECUTE FUNCTION touch();\n";
    return sql.str();
}

}  // namespace

template_spec small_template() {
    return {"small", "20 tables, FKs, indexes, trigger", {{"0001_tables.sql", chained_tables(20)}}};
}

template_spec medium_template() {
    std::ostringstream more;
    for (int i = 1; i <= 130; ++i) {
        more << "CREATE TABLE m" << i
             << " (id bigserial PRIMARY KEY, a int, b text, c timestamptz DEFAULT now());\n"
             << "CREATE INDEX m" << i << "_a ON m" << i << " (a);\n";
    }
    const std::string rows =
        "INSERT INTO m1 (a, b) SELECT g, repeat(md5(g::text), 3) "
        "FROM generate_series(1, 350000) g;\n";
    return {"medium",
            "150 tables, 50 MB of rows",
            {{"0001_tables.sql", chained_tables(20)},
             {"0002_more_tables.sql", more.str()},
             {"0003_rows.sql", rows}}};
}

void write_migrations(const template_spec& spec, const fs::path& dir) {
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    for (const auto& [name, sql] : spec.migrations) {
        std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
        out << sql;
        if (!out.flush()) {
            throw std::runtime_error("cannot write " + (dir / name).string());
        }
    }
}

void run_test_body(PGconn* conn, bool rolled_back) {
    if (rolled_back) {
        exec(conn, "BEGIN");
    }
    exec(conn, "INSERT INTO t1 (name) VALUES ('a'), ('b'), ('c')");
    exec(conn, "INSERT INTO t2 (parent, name) SELECT id, name FROM t1");
    const std::string seen = exec(conn,
                                  "SELECT count(*) FROM t1 JOIN t2 ON t2.parent = t1.id "
                                  "WHERE t2.updated IS NOT NULL");
    if (rolled_back) {
        exec(conn, "ROLLBACK");
    }
    if (seen != "3") {
        throw std::runtime_error("the test saw " + seen +
                                 " rows instead of its own 3: the database was not fresh");
    }
}

}  // namespace pglease::bench
