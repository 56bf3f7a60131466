// Consecutive tests of one worker (a file's tests run in order, in one worker): each starts from
// the template's exact state, whatever the one before it did, on the same lease. Rows are undone
// in place (`reset`: the same database, same oid) unless the daemon cannot prove that exact (it
// then says `reclone`); after DDL the database is always cloned again under the same name.
const { Client } = require("pg");
const { useDatabase } = require("pglease/jest");
const { PRISTINE, state } = require("../support/pristine.cjs");

const db = useDatabase();
const seen = []; // each test's lease and database oid, in order
let client;
beforeEach(async () => {
  client = new Client({ connectionString: db.dsn });
  await client.connect();
  expect(await state(client)).toEqual(PRISTINE);
  const { oid } = (await client.query("SELECT oid::text FROM pg_database WHERE datname = current_database()")).rows[0];
  seen.push({ lease: db.lease, oid });
});
afterEach(() => client.end());

/** How the database was made fresh since the test before: through the same lease, in place or cloned again. */
function madeFresh() {
  const [before, now] = seen.slice(-2);
  expect(now.lease.id).toBe(before.lease.id);
  expect(now.lease.reset).toBeDefined();
  expect(now.oid === before.oid).toBe(now.lease.reset.result === "reset");
  return now.lease.reset.result;
}

test("writes rows", async () => {
  await client.query("INSERT INTO scratch (writer) SELECT 'jest' FROM generate_series(1, 500)");
  await client.query("INSERT INTO accounts (email) VALUES ('new@example.com')");
  await client.query("UPDATE projects SET name = 'renamed'");
});

test("truncates with cascade", async () => {
  madeFresh();
  await client.query("TRUNCATE accounts CASCADE");
  expect((await client.query("SELECT count(*)::int AS n FROM tasks")).rows[0].n).toBe(0);
});

test("moves sequences", async () => {
  madeFresh();
  await client.query("SELECT nextval('accounts_id_seq') FROM generate_series(1, 100)");
  await client.query("SELECT setval('invoice_numbers', 5000)");
});

test("drops a table and the trigger's function", async () => {
  madeFresh();
  await client.query("DROP TABLE tasks");
  await client.query("DROP FUNCTION tasks_changed()");
});

test("creates a table and restarts a sequence", async () => {
  expect(madeFresh()).toBe("reclone"); // DDL is never undone in place
  await client.query("CREATE TABLE extra AS SELECT g AS n FROM generate_series(1, 5000) g");
  await client.query("ALTER SEQUENCE invoice_numbers RESTART WITH 7000");
});

test("finds it all undone", async () => {
  expect(madeFresh()).toBe("reclone");
  expect((await client.query("SELECT to_regclass('extra') AS t")).rows[0].t).toBeNull();
  expect(new Set(seen.map((s) => s.lease.id)).size).toBe(1);
});
