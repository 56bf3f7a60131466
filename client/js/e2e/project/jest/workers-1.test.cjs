// Workers never share a database: while tests of different Jest workers run at once, each has
// its own and sees only what it wrote.
const path = require("node:path");
const { Client } = require("pg");
const { useDatabase } = require("pglease/jest");
const { PRISTINE, state, meetOtherWorkers } = require("../support/pristine.cjs");

const db = useDatabase();
let client;
beforeEach(async () => {
  client = new Client({ connectionString: db.dsn });
  await client.connect();
});
afterEach(() => client.end());

test("workers at the same time have different databases (file 1)", async () => {
  const worker = process.env.JEST_WORKER_ID;
  await client.query("INSERT INTO scratch (writer, note) VALUES ($1, $2)", [worker, "file 1"]);
  const others = await meetOtherWorkers(path.join(process.env.E2E_MEETING_DIR, "workers"), { worker, file: "1", database: db.database });
  expect(others.length).toBeGreaterThan(0);
  for (const other of others) expect(other.database).not.toBe(db.database);
  expect((await client.query("SELECT writer, note FROM scratch")).rows).toEqual([{ writer: worker, note: "file 1" }]);
});

test("the next test of this worker starts from the template again (file 1)", async () => {
  expect(await state(client)).toEqual(PRISTINE);
});
