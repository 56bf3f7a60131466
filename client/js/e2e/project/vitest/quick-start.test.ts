import pg from "pg";
import { useDatabase } from "pglease/vitest";
import { test } from "vitest";

const db = useDatabase(); // a database fresh from the template for every test
test("signup", async () => {
  const client = new pg.Client({ connectionString: db.dsn });
  await client.connect();
  await client.query("INSERT INTO accounts (email) VALUES ('new@example.com')");
  await client.end();
});
