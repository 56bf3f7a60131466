// A clone is the whole template: foreign keys, triggers, sequences and constraints work; the
// package's types and errors are what a TypeScript user relies on.
import { readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { ApiError, Client, type Lease } from "pglease";
import { useDatabase, type TestDatabase } from "pglease/vitest";
import { afterEach, beforeEach, expect, test } from "vitest";

const db: TestDatabase = useDatabase();
let client: pg.Client;
beforeEach(async () => {
  client = new pg.Client({ connectionString: db.dsn });
  await client.connect();
});
afterEach(() => client.end());

test("a foreign key refuses a missing account", async () => {
  await expect(client.query("INSERT INTO projects (account_id, name) VALUES (999, 'orphan')")).rejects.toMatchObject({ code: "23503" });
});

test("the trigger follows cascaded deletes", async () => {
  await client.query("DELETE FROM accounts WHERE email = 'ada@example.com'");
  expect((await client.query("SELECT task_count FROM projects")).rows).toEqual([{ task_count: 1 }]);
  expect((await client.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'delete'")).rows[0].n).toBe(2);
});

test("sequences continue where the template left them", async () => {
  expect((await client.query("SELECT nextval('invoice_numbers') AS n")).rows[0].n).toBe("1000");
});

test("the template was built once for every worker", () => {
  const builds = readFileSync(path.join(import.meta.dirname, "..", "builds.log"), "utf8").split("\n");
  expect(builds.filter((line) => line.startsWith("pglease_e2e_vitest_"))).toHaveLength(1);
});

test("the live view names this test's lease", async () => {
  const lease: Lease = db.lease;
  expect(lease.dsn).toBe(db.dsn);
  expect((await client.query("SELECT current_database() AS d")).rows[0].d).toBe(lease.database);
  const live = await new Client().lease(lease.id);
  expect(live.expiresAt.getTime()).toBeGreaterThan(Date.now());
  await expect(new Client().renew("0".repeat(32))).rejects.toBeInstanceOf(ApiError);
});
