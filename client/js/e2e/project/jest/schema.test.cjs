// A clone is the whole template: foreign keys, triggers, sequences and constraints work.
const { readFileSync } = require("node:fs");
const path = require("node:path");
const { Client } = require("pg");
const { ApiError, Client: Pglease } = require("pglease");
const { useDatabase } = require("pglease/jest");

const db = useDatabase();
let client;
beforeEach(async () => {
  client = new Client({ connectionString: db.dsn });
  await client.connect();
});
afterEach(() => client.end());

test("a foreign key refuses a missing account", async () => {
  await expect(client.query("INSERT INTO projects (account_id, name) VALUES (999, 'orphan')")).rejects.toMatchObject({ code: "23503" });
});

test("a foreign key cascades deletes", async () => {
  await client.query("DELETE FROM accounts WHERE email = 'ada@example.com'");
  expect((await client.query("SELECT title FROM tasks")).rows).toEqual([{ title: "schedule" }]);
});

test("the trigger counts and audits inserted tasks", async () => {
  const { rows } = await client.query("INSERT INTO tasks (project_id, title) VALUES (2, 'boot') RETURNING id");
  expect(rows[0].id).toBe("4");
  expect((await client.query("SELECT task_count FROM projects WHERE id = 2")).rows[0].task_count).toBe(2);
  expect((await client.query("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1")).rows[0].action).toBe("insert");
});

test("sequences continue where the template left them", async () => {
  expect((await client.query("SELECT nextval('invoice_numbers') AS n")).rows[0].n).toBe("1000");
  expect((await client.query("INSERT INTO accounts (email) VALUES ('x@example.com') RETURNING id")).rows[0].id).toBe("4");
});

test("the template was built once for every worker", () => {
  const builds = readFileSync(path.join(__dirname, "..", "builds.log"), "utf8").split("\n");
  expect(builds.filter((line) => line.startsWith("pglease_e2e_jest_"))).toHaveLength(1);
});

test("errors carry the server's status and code", async () => {
  const pglease = new Pglease();
  await expect(pglease.renew("0".repeat(32))).rejects.toMatchObject({ status: 404, code: "unknown_lease" });
  await expect(pglease.acquire("no_such_template", { waitSeconds: 0 })).rejects.toBeInstanceOf(ApiError);
});
