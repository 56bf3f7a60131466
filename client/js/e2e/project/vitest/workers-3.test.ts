// Workers never share a database: while tests of different Vitest workers run at once, each has
// its own and sees only what it wrote.
import path from "node:path";
import pg from "pg";
import { useDatabase } from "pglease/vitest";
import { afterEach, beforeEach, expect, inject, test } from "vitest";
import { PRISTINE, meetOtherWorkers, state } from "../support/pristine.cjs";

const db = useDatabase();
let client: pg.Client;
beforeEach(async () => {
  client = new pg.Client({ connectionString: db.dsn });
  await client.connect();
});
afterEach(() => client.end());

test("workers at the same time have different databases (file 3)", async () => {
  const worker = process.env.VITEST_POOL_ID!;
  await client.query("INSERT INTO scratch (writer, note) VALUES ($1, $2)", [worker, "file 3"]);
  const others = await meetOtherWorkers(path.join(inject("meetingDir"), "workers"), { worker, file: "3", database: db.database });
  expect(others.length).toBeGreaterThan(0);
  for (const other of others) expect(other.database).not.toBe(db.database);
  expect((await client.query("SELECT writer, note FROM scratch")).rows).toEqual([{ writer: worker, note: "file 3" }]);
});

test("the next test of this worker starts from the template again (file 3)", async () => {
  expect(await state(client)).toEqual(PRISTINE);
});
