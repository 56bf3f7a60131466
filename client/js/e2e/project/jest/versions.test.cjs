// Two branches' migrations of one template name live side by side on one pgleased: a lease that
// names its version's fingerprint gets that schema even after the other branch built a newer one,
// and this run's own leases name the version it built.
const { readFileSync } = require("node:fs");
const path = require("node:path");
const { Client: Pg } = require("pg");
const { ApiError, Client, buildTemplate } = require("pglease");

const client = new Client();
const name = `e2e_branch_${process.pid}`;

async function tables(dsn) {
  const pg = new Pg({ connectionString: dsn });
  await pg.connect();
  try {
    const { rows } = await pg.query("SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1");
    return rows.map((row) => row.relname);
  } finally {
    await pg.end();
  }
}

async function build(fingerprint, table) {
  return buildTemplate(client, name, fingerprint, async (b) => {
    const pg = new Pg({ connectionString: b.dsn });
    await pg.connect();
    await pg.query(`CREATE TABLE ${table} (n int)`);
    await pg.end();
  });
}

async function leased(options) {
  const lease = await client.acquire(name, { waitSeconds: 60, ...options });
  try {
    return { fingerprint: lease.fingerprint, tables: await tables(lease.dsn) };
  } finally {
    await client.release(lease.id);
  }
}

test("a lease naming a version's fingerprint gets that version beside a newer one", async () => {
  await build("branch-a", "branch_a");
  await build("branch-b", "branch_b"); // the newest now
  expect((await leased({})).tables).toEqual(["branch_b"]);
  const a = await leased({ fingerprint: "branch-a" });
  expect(a.tables).toEqual(["branch_a"]);
  expect((await leased({ fingerprint: a.fingerprint })).tables).toEqual(["branch_a"]);
  expect((await build("branch-a", "branch_a")).built).toBe(false); // ready, not built again
  const missing = await client.acquire(name, { fingerprint: "branch-z" }).catch((error) => error);
  expect(missing).toBeInstanceOf(ApiError);
  expect([missing.status, missing.code]).toEqual([404, "unknown_version"]);
});

test("this run's leases name the version it built", async () => {
  const settings = JSON.parse(readFileSync(path.join(process.env.PGLEASE_RUN_DIR, "settings.json"), "utf8"));
  expect(settings.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  const lease = await client.acquire(settings.template, { fingerprint: settings.fingerprint, waitSeconds: 60 });
  await client.release(lease.id);
  const newest = await client.template(settings.template);
  expect(newest.versions).toContain(lease.fingerprint);
});
