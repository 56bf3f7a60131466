const { mkdtempSync } = require("node:fs");
const path = require("node:path");
const { globalSetup } = require("pglease/jest");

const pglease = globalSetup({ template: "e2e_jest", migrations: "node migrate.mjs", migrationsFiles: ["migrate.mjs", "migrations"] });

module.exports = async () => {
  // Where the tests of different workers meet (workers inherit the environment set here).
  process.env.E2E_MEETING_DIR = mkdtempSync(path.join(__dirname, ".meeting-"));
  await pglease();
};
