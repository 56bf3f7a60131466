// The project's migration tool: applies migrations/*.sql in order to $DATABASE_URL, each in its own
// transaction, and notes the build in builds.log (the suites check it ran once per run).
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const here = path.dirname(fileURLToPath(import.meta.url));
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
for (const file of readdirSync(path.join(here, "migrations")).filter((f) => f.endsWith(".sql")).sort()) {
  await client.query("BEGIN");
  await client.query(readFileSync(path.join(here, "migrations", file), "utf8"));
  await client.query("COMMIT");
}
await client.end();
appendFileSync(path.join(here, "builds.log"), `${process.env.PGDATABASE} ${process.pid}\n`);
