// A test that leaves a transaction open costs its worker the database, not the next test: the
// reset is refused (409 sessions_busy) for a moment, then the worker releases that lease (which
// ends the session) and the next test gets a new one, with a warning that says why.
import pg from "pg";
import type { Lease } from "pglease";
import { useDatabase } from "pglease/vitest";
import { expect, test } from "vitest";
import { PRISTINE, state } from "../support/pristine.cjs";

const db = useDatabase();
let leaked: { lease: Lease; ended: Promise<unknown> };

test("leaves a transaction open", async () => {
  const client = new pg.Client({ connectionString: db.dsn });
  const ended = new Promise((resolve) => client.on("error", resolve).on("end", () => resolve(undefined)));
  await client.connect();
  await client.query("BEGIN");
  await client.query("INSERT INTO scratch (writer) VALUES ('leaked')");
  leaked = { lease: db.lease, ended };
});

test("the next test gets a new lease, and the leaked session was ended", async () => {
  expect(db.lease.reset).toBeUndefined();
  expect(db.lease.id).not.toBe(leaked.lease.id);
  const client = new pg.Client({ connectionString: db.dsn });
  await client.connect();
  try {
    expect(await state(client)).toEqual(PRISTINE);
  } finally {
    await client.end();
  }
  await leaked.ended;
});
