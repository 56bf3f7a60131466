"""What a test does to a clone of reset_template's template, at random, by kind.

A Workload holds one lease's sessions (opened on demand, up to three) and a seeded random
generator; run(kind) writes to the clone the way that kind says, committing or rolling back as
it goes. Every statement is deterministic given the generator and the clone's state, so a seed
replays a run. Kinds:

  dml          inserts, updates, deletes, upserts, row locks; the trigger writes audit rows,
               deleting accounts and projects cascades
  truncate     TRUNCATE of one or two tables: CASCADE, RESTART IDENTITY, partitions, ONLY; then
               sometimes writes in the same transaction
  copy         COPY FROM STDIN (text and CSV, through the trigger, into the partitioned table,
               values stored in TOAST, FREEZE after a TRUNCATE)
  sequences    nextval and setval (is_called true and false) on standalone, serial and identity
               sequences, inside transactions that commit or roll back
  rollback     transactions that roll back, savepoints rolled back and released, a failed
               statement undone, TRUNCATE and COPY rolled back
  multi        two or three sessions, statements interleaved, committed or rolled back in any
               order
  toast        large values written, replaced and deleted
  unlogged     writes to the unlogged table
  partition    rows routed into partitions, moved across them, deleted with cascades
  maintenance  VACUUM, ANALYZE, VACUUM FULL, CLUSTER, REINDEX after some writes
  mixed        two or three of the kinds above that write rows only, one after another
  ddl          one schema or catalog change (CREATE, ALTER, DROP, COMMENT, GRANT, temp tables,
               large objects, extensions, database settings), sometimes rolled back
  known_gaps   (with reset_template's known gaps only) one write that pgleased does not undo
               exactly or in place yet: the database's CONNECTION LIMIT or privileges, a row of
               an inheritance parent, of a table with a trigger enabled ALWAYS, of a table a
               partitioned table references
"""

import io
import itertools
import threading
import time

import psycopg2
import psycopg2.extras

MOODS = ("calm", "busy", "away")
SETTING_KEYS = ("theme", "lang", "tz", "font", "size")
SEQUENCES = ("invoice_numbers", "unused_numbers", "projects_id_seq", "audit_id_seq",
             "events_id_seq", "empty_notes_id_seq", '"Billing"."Line Items_id_seq"')
IDENTITIES = (("accounts", "id"), ("tasks", "id"))


class Workload:
    """The sessions of one round on one clone, and the random choices made on them."""

    def __init__(self, lease, rng, unique):
        self.dsn = lease["dsn"]
        self.database = lease["database"]
        self.rng = rng
        self.unique = unique  # itertools.count: names no round repeats
        self.sessions = []
        self.pending = None  # a session left inside a transaction or a statement, see leave_busy

    def session(self, index=0):
        while len(self.sessions) <= index:
            conn = psycopg2.connect(self.dsn, connect_timeout=10)
            with conn.cursor() as cur:
                cur.execute("SET lock_timeout = '10s'")
            conn.commit()
            self.sessions.append(conn)
        return self.sessions[index]

    def cursor(self, index=0):
        return self.session(index).cursor()

    def close(self):
        """Closes every session; end_busy first, or this waits for a busy one's statement."""
        for conn in self.sessions:
            conn.close()
        self.sessions = []

    def pids(self):
        """The server pids of the sessions open now."""
        return {conn.get_backend_pid() for conn in self.sessions if not conn.closed}

    def close_idle(self):
        """Closes the sessions that leave_busy did not leave busy."""
        busy = self.pending[0] if self.pending else None
        for conn in self.sessions:
            if conn is not busy:
                conn.close()
        self.sessions = [busy] if busy else []

    def run(self, kind):
        KINDS[kind](self)

    # ---------------------------------------------------------------- sessions left busy

    def leave_busy(self, how):
        """Leaves a session of its own for the reset to meet: 'in transaction' (an uncommitted
        insert), 'aborted' (a transaction a failed statement broke), 'active' (a statement still
        running) or 'writing' (committing one insert after another until it is cut off)."""
        conn = psycopg2.connect(self.dsn, connect_timeout=10)
        self.sessions.append(conn)
        pid = conn.get_backend_pid()
        if how in ("in transaction", "aborted"):
            with conn.cursor() as cur:
                cur.execute("INSERT INTO accounts (email) VALUES (%s)",
                            (f"pending{next(self.unique)}@example.com",))
                if how == "aborted":
                    try:
                        cur.execute("SELECT 1 / 0")
                    except psycopg2.errors.DivisionByZero:
                        pass
            self.pending = (conn, None)
            return pid
        # Autocommit: no BEGIN runs first, so "active" is the statement itself.
        conn.autocommit = True
        first = next(self.unique)

        def keep_busy():
            try:
                with conn.cursor() as cur:
                    if how == "active":
                        cur.execute("SELECT pg_sleep(60)")
                    for n in itertools.count() if how == "writing" else ():
                        cur.execute("INSERT INTO accounts (email) VALUES (%s)",
                                    (f"writer{first}-{n}@example.com",))
            except psycopg2.Error:
                pass  # cancelled, or terminated by the reset

        thread = threading.Thread(target=keep_busy, daemon=True)
        thread.start()
        self.pending = (conn, thread)
        self.wait_for_state(pid, "active" if how == "active" else None)
        return pid

    def wait_for_state(self, pid, state):
        """Until pg_stat_activity shows session `pid` running its pg_sleep in `state` (None:
        after its first commit, seen as a row it wrote)."""
        probe = psycopg2.connect(self.dsn, connect_timeout=10)
        probe.autocommit = True
        try:
            with probe.cursor() as cur:
                for _ in range(500):
                    if state is not None:
                        cur.execute("SELECT state FROM pg_stat_activity WHERE pid = %s "
                                    "AND query LIKE 'SELECT pg_sleep%%'", (pid,))
                        row = cur.fetchone()
                        if row and row[0] == state:
                            return
                    else:
                        cur.execute("SELECT count(*) FROM accounts WHERE email LIKE 'writer%%'")
                        if cur.fetchone()[0] > 0:
                            return
                    time.sleep(0.01)
        finally:
            probe.close()
        raise RuntimeError(f"session {pid} never showed {state or 'a commit'}")

    def end_busy(self):
        """Ends what leave_busy left: a rollback, or a cancel of the running statements."""
        if self.pending is None:
            return
        conn, thread = self.pending
        self.pending = None
        try:
            if thread is None:
                conn.rollback()
            else:
                conn.cancel()
        except psycopg2.Error:
            pass  # the session was terminated
        if thread is not None:
            thread.join(timeout=30)
            if thread.is_alive():
                raise RuntimeError("the busy session would not stop")


# ---------------------------------------------------------------- row writes, one statement each

def insert_account(w, cur):
    cur.execute("INSERT INTO accounts (email, mood, balance) VALUES (%s, %s, %s)",
                (f"new{next(w.unique)}@example.com", w.rng.choice(MOODS),
                 w.rng.randint(-500, 500)))


def update_accounts(w, cur):
    modulus = w.rng.randint(3, 9)
    cur.execute("UPDATE accounts SET balance = balance + %s, mood = %s WHERE id %% %s = %s",
                (w.rng.randint(1, 50), w.rng.choice(MOODS), modulus, w.rng.randrange(modulus)))


def delete_account(w, cur):
    # Cascades to its projects and their tasks (audited), and sets line items' task to NULL.
    cur.execute("DELETE FROM accounts WHERE id = (SELECT min(id) FROM accounts WHERE id >= %s)",
                (w.rng.randint(1, 45),))


def insert_project(w, cur):
    cur.execute("INSERT INTO projects (account_id, name, tags, meta) SELECT id, %s, %s, %s "
                "FROM accounts WHERE id >= %s ORDER BY id LIMIT 1",
                (f"project new {next(w.unique)}", [f"t{w.rng.randrange(9)}"],
                 psycopg2.extras.Json({"n": w.rng.randrange(1000)}), w.rng.randint(1, 45)))


def insert_tasks(w, cur):
    cur.execute("INSERT INTO tasks (project_id, title) SELECT id, 'new ' || id || ' ' || %s "
                "FROM projects WHERE id %% %s = 0", (next(w.unique), w.rng.randint(5, 40)))


def update_tasks(w, cur):
    modulus = w.rng.randint(4, 30)
    cur.execute("UPDATE tasks SET done = NOT done, title = title || '!' WHERE id %% %s = %s",
                (modulus, w.rng.randrange(modulus)))


def delete_tasks(w, cur):
    cur.execute("DELETE FROM tasks WHERE project_id = %s", (w.rng.randint(1, 85),))


def delete_project(w, cur):
    cur.execute("DELETE FROM projects WHERE id = %s", (w.rng.randint(1, 85),))


def upsert_setting(w, cur):
    if w.rng.random() < 0.5:
        cur.execute("INSERT INTO settings VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (w.rng.choice(SETTING_KEYS), f"v{next(w.unique)}"))
    else:
        cur.execute("INSERT INTO settings VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (w.rng.choice(SETTING_KEYS), f"v{next(w.unique)}"))


def bill_tasks(w, cur):
    cur.execute('INSERT INTO "Billing"."Line Items" ("Task", quantity, invoice) '
                "SELECT id, %s, nextval('invoice_numbers') FROM tasks WHERE id %% %s = 1 "
                "ORDER BY id LIMIT 3", (w.rng.randint(1, 99), w.rng.randint(5, 50)))


def write_note(w, cur):
    cur.execute("INSERT INTO empty_notes (body) VALUES (%s)", (f"note {next(w.unique)}",))


def insert_events(w, cur):
    cur.execute("INSERT INTO events (at, kind, account_id) "
                "SELECT date '2023-01-01' + %s + g, 'new', %s FROM generate_series(0, %s) g",
                (w.rng.randint(0, 900), w.rng.randint(1, 40), w.rng.randint(0, 5)))


def move_events(w, cur):
    # Across partitions; rows with notes (id divisible by 10) stay, their key is referenced.
    cur.execute("UPDATE events SET at = at + %s WHERE id %% %s = 1 AND id %% 10 <> 0",
                (w.rng.choice((200, 365, 800)), w.rng.randint(7, 60)))


def delete_events(w, cur):
    cur.execute("DELETE FROM events WHERE id %% %s = 0", (w.rng.choice((20, 30, 50, 70)),))


def write_scratch(w, cur):
    cur.execute("INSERT INTO scratch VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = scratch.value + 1",
                (f"k{w.rng.randint(1, 30)}", w.rng.randint(1, 100)))
    if w.rng.random() < 0.3:
        cur.execute("DELETE FROM scratch WHERE value %% %s = 0", (w.rng.randint(3, 9),))


def write_document(w, cur):
    body = w.rng.randbytes(w.rng.randint(1000, 120000)).hex()
    if w.rng.random() < 0.5:
        cur.execute("UPDATE documents SET body = %s, data = %s WHERE id = %s",
                    (body, w.rng.randbytes(w.rng.randint(10, 5000)), w.rng.randint(1, 12)))
    else:
        cur.execute("INSERT INTO documents VALUES (%s, 'new', %s, NULL)",
                    (1000 + next(w.unique), body))


def lock_rows(w, cur):
    cur.execute("SELECT id FROM accounts WHERE id %% %s = 0 FOR UPDATE", (w.rng.randint(2, 9),))


ROW_WRITES = (insert_account, update_accounts, delete_account, insert_project, insert_tasks,
              update_tasks, delete_tasks, delete_project, upsert_setting, bill_tasks, write_note,
              insert_events, move_events, delete_events, write_scratch, lock_rows)


def some_writes(w, cur, low, high, steps=ROW_WRITES):
    for _ in range(w.rng.randint(low, high)):
        w.rng.choice(steps)(w, cur)


# ---------------------------------------------------------------- the kinds

def dml(w):
    some_writes(w, w.cursor(), 2, 8)
    w.session().commit()


TRUNCATES = (
    "TRUNCATE audit",
    'TRUNCATE "Billing"."Line Items"',
    "TRUNCATE tasks CASCADE",
    "TRUNCATE accounts CASCADE",
    'TRUNCATE projects, tasks, "Billing"."Line Items"',
    "TRUNCATE events CASCADE",
    "TRUNCATE events_2024 CASCADE",
    "TRUNCATE event_notes",
    "TRUNCATE empty_notes",
    "TRUNCATE scratch",
    "TRUNCATE documents",
    "TRUNCATE settings RESTART IDENTITY",
    "TRUNCATE tasks, audit RESTART IDENTITY CASCADE",
    "TRUNCATE ONLY audit",
)


def truncate(w):
    cur = w.cursor()
    for statement in w.rng.sample(TRUNCATES, w.rng.randint(1, 2)):
        cur.execute(statement)
    if w.rng.random() < 0.5:
        some_writes(w, cur, 1, 4)
    w.session().commit()


def copy_tasks(w, cur):
    cur.execute("SELECT id FROM projects ORDER BY id LIMIT %s", (w.rng.randint(1, 30),))
    lines = [f"{pid}\tcopied {next(w.unique)}\t{'t' if w.rng.random() < 0.5 else 'f'}\n"
             for (pid,) in cur.fetchall()]
    cur.copy_expert("COPY tasks (project_id, title, done) FROM STDIN", io.StringIO("".join(lines)))


def copy_events(w, cur):
    lines = [f"2023-01-01,copied,{w.rng.randint(1, 40)}\n" if w.rng.random() < 0.3 else
             f"{2023 + w.rng.randrange(4)}-0{w.rng.randint(1, 9)}-1{w.rng.randrange(9)},"
             f"copied,\n" for _ in range(w.rng.randint(1, 200))]
    cur.copy_expert("COPY events (at, kind, account_id) FROM STDIN (FORMAT csv)",
                    io.StringIO("".join(lines)))


def copy_documents(w, cur):
    lines = [f"{2000 + next(w.unique)}\tcopied\t{w.rng.randbytes(w.rng.randint(10, 60000)).hex()}"
             f"\t\\N\n" for _ in range(w.rng.randint(1, 4))]
    cur.copy_expert("COPY documents FROM STDIN", io.StringIO("".join(lines)))


def copy_rows(w, cur):
    if w.rng.random() < 0.5:
        cur.copy_expert("COPY audit (operation, detail) FROM STDIN",
                        io.StringIO("".join(f"COPY\trow {i}\n" for i in range(50))))
    else:
        cur.copy_expert("COPY scratch FROM STDIN", io.StringIO("".join(
            f"copied{next(w.unique)}\t{i}\n" for i in range(w.rng.randint(1, 40)))))


def copy_frozen(w, cur):
    cur.execute("TRUNCATE settings")
    cur.copy_expert("COPY settings FROM STDIN (FREEZE)",
                    io.StringIO("".join(f"key{i}\tfrozen\n" for i in range(w.rng.randint(0, 9)))))


COPIES = (copy_tasks, copy_events, copy_documents, copy_rows, copy_frozen)


def copy(w):
    cur = w.cursor()
    for step in w.rng.sample(COPIES, w.rng.randint(1, 2)):
        step(w, cur)
    w.session().commit()


def sequence_step(w, cur):
    choice = w.rng.randrange(6)
    if choice == 0:
        cur.execute("SELECT nextval(%s) FROM generate_series(1, %s)",
                    (w.rng.choice(SEQUENCES), w.rng.randint(1, 40)))
    elif choice == 1:
        cur.execute("SELECT setval(%s, %s, %s)", (w.rng.choice(SEQUENCES),
                                                    w.rng.randint(1, 10**6), w.rng.random() < 0.5))
    elif choice == 2:
        cur.execute("SELECT nextval('countdown') FROM generate_series(1, %s)",
                    (w.rng.randint(1, 30),))
    elif choice == 3:
        cur.execute("SELECT setval('countdown', %s, %s)",
                    (-w.rng.randint(0, 9999), w.rng.random() < 0.5))
    elif choice == 4:
        table, column = w.rng.choice(IDENTITIES)
        cur.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
                    (table, column, w.rng.randint(500, 10**6)))
    else:
        insert_account(w, cur)  # the identity's sequence, through a row


def sequences(w):
    cur = w.cursor()
    for _ in range(w.rng.randint(1, 6)):
        sequence_step(w, cur)
    # A sequence moves on even when its transaction rolls back.
    if w.rng.random() < 0.3:
        w.session().rollback()
    else:
        w.session().commit()


def rollback(w):
    conn = w.session()
    cur = conn.cursor()
    pattern = w.rng.randrange(6)
    if pattern == 0:
        some_writes(w, cur, 1, 6)
        conn.rollback()
    elif pattern == 1:
        some_writes(w, cur, 0, 2)
        cur.execute("SAVEPOINT a")
        some_writes(w, cur, 1, 4)
        cur.execute("ROLLBACK TO SAVEPOINT a")
        some_writes(w, cur, 0, 2)
        cur.execute("SAVEPOINT b")
        some_writes(w, cur, 1, 2)
        cur.execute("RELEASE SAVEPOINT b")
        if w.rng.random() < 0.7:
            conn.commit()
        else:
            conn.rollback()
    elif pattern == 2:
        some_writes(w, cur, 0, 2)
        cur.execute("SAVEPOINT before_duplicate")
        try:
            cur.execute("INSERT INTO accounts (email) VALUES ('user1@example.com')")
        except psycopg2.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT before_duplicate")
        some_writes(w, cur, 1, 2)
        conn.commit()
    elif pattern == 3:
        cur.execute(w.rng.choice(TRUNCATES))
        some_writes(w, cur, 0, 2)
        conn.rollback()
    elif pattern == 4:
        cur.execute("SAVEPOINT a")
        cur.execute(w.rng.choice(TRUNCATES))
        cur.execute("ROLLBACK TO SAVEPOINT a")
        some_writes(w, cur, 0, 2)
        conn.commit()
    else:
        w.rng.choice(COPIES)(w, cur)
        conn.rollback()


# Statements for session `index` of `count`, on rows no other session of the round touches.
def slice_step(w, cur, index, count):
    choice = w.rng.randrange(6)
    if choice == 0:
        cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id %% %s = %s",
                    (count, index))
    elif choice == 1:
        cur.execute("INSERT INTO tasks (project_id, title) SELECT id, 'session ' || %s "
                    "FROM projects WHERE id %% %s = %s AND id < %s",
                    (index, count, index, w.rng.randint(5, 80)))
    elif choice == 2:
        cur.execute("DELETE FROM tasks WHERE project_id %% %s = %s AND id %% %s = 0",
                    (count, index, w.rng.randint(5, 20)))
    elif choice == 3:
        cur.execute("INSERT INTO scratch VALUES (%s, %s)", (f"s{index}-{next(w.unique)}", index))
    elif choice == 4:
        cur.execute("SELECT nextval('invoice_numbers')")
    else:
        cur.execute("INSERT INTO events (at, kind) VALUES (date '2024-01-01' + %s, %s)",
                    (w.rng.randint(0, 700), f"session {index}"))


def multi(w):
    count = w.rng.randint(2, 3)
    remaining = [w.rng.randint(1, 5) for _ in range(count)]
    cursors = [w.cursor(i) for i in range(count)]
    while any(remaining):
        index = w.rng.choice([i for i, left in enumerate(remaining) if left])
        slice_step(w, cursors[index], index, count)
        remaining[index] -= 1
    for index in w.rng.sample(range(count), count):
        if w.rng.random() < 0.75:
            w.session(index).commit()
        else:
            w.session(index).rollback()


def toast(w):
    cur = w.cursor()
    for _ in range(w.rng.randint(1, 3)):
        choice = w.rng.randrange(4)
        if choice == 0:
            write_document(w, cur)
        elif choice == 1:
            cur.execute("DELETE FROM documents WHERE id = %s", (w.rng.randint(1, 12),))
        elif choice == 2:
            cur.execute("UPDATE projects SET meta = %s WHERE id = %s",
                        (psycopg2.extras.Json({"blob": w.rng.randbytes(20000).hex()}),
                         w.rng.randint(1, 80)))
        else:
            cur.execute("UPDATE documents SET title = title || '+'")  # the TOAST values stay
    w.session().commit()


def unlogged(w):
    cur = w.cursor()
    for _ in range(w.rng.randint(1, 4)):
        write_scratch(w, cur)
    if w.rng.random() < 0.2:
        cur.execute("TRUNCATE scratch")
    w.session().commit()


def partition(w):
    cur = w.cursor()
    steps = (insert_events, move_events, delete_events, copy_events)
    for _ in range(w.rng.randint(1, 4)):
        w.rng.choice(steps)(w, cur)
    if w.rng.random() < 0.3:
        cur.execute("INSERT INTO events_2024 (at, kind) VALUES ('2024-05-05', 'direct')")
    if w.rng.random() < 0.2:
        cur.execute("INSERT INTO event_notes SELECT id, at, 'more' FROM events "
                    "WHERE id % 10 = 0 AND id < 200")
    w.session().commit()


MAINTENANCE = ("VACUUM tasks", "ANALYZE", "VACUUM (ANALYZE) accounts", "VACUUM FULL audit",
               "CLUSTER tasks USING tasks_pkey", "REINDEX TABLE tasks", "VACUUM (FREEZE) events")


def maintenance(w):
    conn = w.session()
    some_writes(w, conn.cursor(), 1, 4)
    conn.commit()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(w.rng.choice(MAINTENANCE))
    finally:
        conn.autocommit = False


ROW_KINDS = ("dml", "truncate", "copy", "sequences", "rollback", "toast", "unlogged",
             "partition")


def mixed(w):
    for kind in w.rng.sample(ROW_KINDS, w.rng.randint(2, 3)):
        KINDS[kind](w)


DDL = (
    "CREATE TABLE extra (id serial PRIMARY KEY, note text); INSERT INTO extra (note) VALUES ('x')",
    "ALTER TABLE tasks ADD COLUMN note text",
    "ALTER TABLE accounts ADD COLUMN score integer NOT NULL DEFAULT 7",
    "CREATE INDEX ON tasks (title)",
    "ALTER TABLE tasks DISABLE TRIGGER tasks_audit; "
    "INSERT INTO tasks (project_id, title) VALUES (1, 'unaudited')",
    "ALTER TABLE tasks DISABLE TRIGGER tasks_audit; ALTER TABLE tasks ENABLE TRIGGER tasks_audit",
    "DROP TABLE empty_notes",
    "ALTER SEQUENCE invoice_numbers RESTART WITH 5",
    "ALTER SEQUENCE countdown INCREMENT -3",
    "CREATE TEMP TABLE pad AS SELECT * FROM accounts",
    "COMMENT ON TABLE tasks IS 'changed'",
    "CREATE VIEW open_tasks AS SELECT * FROM tasks WHERE NOT done",
    "CREATE FUNCTION answer() RETURNS integer LANGUAGE sql AS 'SELECT 42'",
    "ALTER TABLE projects RENAME COLUMN name TO title; "
    "ALTER TABLE projects RENAME COLUMN title TO name",
    "GRANT SELECT ON accounts TO PUBLIC",
    "REFRESH MATERIALIZED VIEW project_counts",
    "SELECT lo_from_bytea(0, '\\x0102')",
    "ALTER TABLE accounts SET (fillfactor = 70)",
    "ALTER TABLE tasks REPLICA IDENTITY FULL",
    "ALTER TABLE tasks ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE tasks ALTER COLUMN title SET STATISTICS 500",
    "CREATE POLICY finished ON tasks USING (done)",
    "ALTER TYPE mood ADD VALUE 'lost'",
    "ALTER TABLE documents ALTER COLUMN body SET STORAGE MAIN",
    "ALTER TABLE settings SET UNLOGGED",
    "CREATE TABLE events_2030 PARTITION OF events FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')",
    'ALTER TABLE "Billing"."Line Items" DROP COLUMN invoice',
    "CREATE EXTENSION IF NOT EXISTS pgcrypto",
    "ALTER DATABASE {database} SET work_mem = '8MB'",
    "COMMENT ON DATABASE {database} IS 'mine now'",
)


def ddl(w):
    conn = w.session()
    cur = conn.cursor()
    if w.rng.random() < 0.5:
        some_writes(w, cur, 1, 3)
    cur.execute(w.rng.choice(DDL).replace("{database}", f'"{w.database}"'))
    if w.rng.random() < 0.5:
        cur.execute("SAVEPOINT after_change")
        try:
            some_writes(w, cur, 1, 3)
        except psycopg2.Error:
            cur.execute("ROLLBACK TO SAVEPOINT after_change")  # the change made a write fail
    # A rolled-back change leaves catalog records in the WAL all the same.
    if w.rng.random() < 0.15:
        conn.rollback()
    else:
        conn.commit()


KNOWN_GAPS = (
    "ALTER DATABASE {database} CONNECTION LIMIT 50",
    "REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC",
    "GRANT CREATE ON DATABASE {database} TO PUBLIC",
    "INSERT INTO vehicles VALUES (3, 'kayak')",
    "UPDATE replicated SET note = note || '!'",
    # Past the size pgleased deletes rows from rather than truncating.
    "INSERT INTO accounts (email) SELECT 'many' || g || '@example.com' "
    "FROM generate_series(1, 30000) g",
)


def known_gaps(w):
    conn = w.session()
    with conn.cursor() as cur:
        cur.execute(w.rng.choice(KNOWN_GAPS).replace("{database}", f'"{w.database}"'))
    conn.commit()


KINDS = {"dml": dml, "truncate": truncate, "copy": copy, "sequences": sequences,
         "rollback": rollback, "multi": multi, "toast": toast, "unlogged": unlogged,
         "partition": partition, "maintenance": maintenance, "mixed": mixed, "ddl": ddl,
         "known_gaps": known_gaps}
