// What "fresh from the template" means for this schema: the tables, rows, sequences and trigger
// migrations/ leaves. Both suites compare a database's state() with PRISTINE.
const PRISTINE = {
  tables: ["accounts", "audit_log", "projects", "scratch", "tasks"],
  accounts: ["ada@example.com", "grace@example.com", "linus@example.com"],
  projects: [{ name: "compiler", task_count: 2 }, { name: "kernel", task_count: 1 }],
  scratch: 0,
  audit: 3,
  accountsSeq: { last_value: "3", is_called: true },
  invoiceSeq: { last_value: "1000", is_called: false },
  triggers: 1,
};

async function state(client) {
  const one = async (sql) => (await client.query(sql)).rows;
  return {
    tables: (await one("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).map((r) => r.tablename),
    accounts: (await one("SELECT email FROM accounts ORDER BY id")).map((r) => r.email),
    projects: await one("SELECT name, task_count FROM projects ORDER BY id"),
    scratch: Number((await one("SELECT count(*) AS n FROM scratch"))[0].n),
    audit: Number((await one("SELECT count(*) AS n FROM audit_log"))[0].n),
    accountsSeq: (await one("SELECT last_value::text, is_called FROM accounts_id_seq"))[0],
    invoiceSeq: (await one("SELECT last_value::text, is_called FROM invoice_numbers"))[0],
    triggers: Number((await one("SELECT count(*) AS n FROM pg_trigger WHERE tgname = 'tasks_changed'"))[0].n),
  };
}

/** Waits, holding this test's database, until a test in another worker has published too; returns what the others published. */
async function meetOtherWorkers(dir, me, timeoutMs = 60000) {
  const fs = require("node:fs");
  const path = require("node:path");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${me.worker}-${me.file}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(me));
  fs.renameSync(`${file}.tmp`, file);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const others = fs.readdirSync(dir).filter((f) => f.endsWith(".json"))
      .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")))
      .filter((seen) => seen.worker !== me.worker);
    if (others.length > 0 || Date.now() > deadline) return others;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

module.exports = { PRISTINE, state, meetOtherWorkers };
