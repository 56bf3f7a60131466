import { endRun, readRun, startRun, type PgleaseOptions, type RunSettings } from "./run.js";
import { registerDatabase, type Hooks, type TestDatabase } from "./test-database.js";

export type { PgleaseOptions, RunSettings, TestDatabase };

const RUN_DIR = "PGLEASE_RUN_DIR";

/**
 * Jest's `globalSetup`: ensures the template once for the whole run (building it from
 * `options.migrations` when this run is the first to ask) before any worker starts.
 * `module.exports = require("pglease/jest").globalSetup({ template: "app" })`.
 */
export function globalSetup(options: PgleaseOptions = {}): () => Promise<void> {
  return async () => {
    const settings = await startRun(options);
    process.env[RUN_DIR] = settings.runDir; // the workers, started after this, inherit it
  };
}

/** Jest's `globalTeardown` (`"pglease/jest/teardown"`): releases every worker's lease and prints how the tests got their databases. */
export async function globalTeardown(): Promise<void> {
  const runDir = process.env[RUN_DIR];
  if (runDir) await endRun(readRun(runDir));
}

/**
 * In a test file: every test gets a database fresh from the template. Each Jest worker
 * (`JEST_WORKER_ID`) holds one lease for the run, across its test files, and resets it before
 * each test but its first. Returns a live view of the current test's database.
 */
export function useDatabase(): TestDatabase {
  const hooks = globalThis as unknown as Partial<Hooks>;
  if (typeof hooks.beforeEach !== "function" || typeof hooks.afterEach !== "function" || typeof hooks.afterAll !== "function") {
    throw new Error("pglease/jest: useDatabase() must be called at the top of a Jest test file");
  }
  let settings: RunSettings | undefined;
  const load = () => {
    if (settings) return settings;
    const runDir = process.env[RUN_DIR];
    if (!runDir) {
      throw new Error("pglease/jest: no run: add `globalSetup` (calling require(\"pglease/jest\").globalSetup(...)) and `globalTeardown: \"pglease/jest/teardown\"` to the Jest config");
    }
    return (settings = readRun(runDir));
  };
  return registerDatabase(hooks as Hooks, load, process.env.JEST_WORKER_ID ?? "1");
}
