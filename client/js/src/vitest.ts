import { afterAll, afterEach, beforeEach, inject } from "vitest";

import { endRun, startRun, type PgleaseOptions, type RunSettings } from "./run.js";
import { registerDatabase, type TestDatabase } from "./test-database.js";

export type { PgleaseOptions, RunSettings, TestDatabase };

/** The key under which the global setup provides the run's settings to the test workers. */
export const PROVIDED_KEY = "pglease";

/**
 * Vitest's `globalSetup` file's default export: ensures the template once for the whole run and
 * provides the run's settings to the workers; the teardown it returns releases every lease and
 * prints how the tests got their databases.
 * `export default globalSetup({ template: "app" })`.
 */
export function globalSetup(options: PgleaseOptions = {}) {
  return async (project: { provide(key: string, value: unknown): void }) => {
    const settings = await startRun(options);
    project.provide(PROVIDED_KEY, settings);
    return () => endRun(settings);
  };
}

/**
 * In a test file: every test gets a database fresh from the template. Each Vitest worker
 * (`VITEST_POOL_ID`) holds one lease for the run, across its test files, and resets it before
 * each test but its first. Returns a live view of the current test's database.
 * Tests of one file that run concurrently need a lease each: use the client for those.
 */
export function useDatabase(): TestDatabase {
  const settings = () => {
    const provided = inject(PROVIDED_KEY) as RunSettings | undefined;
    if (!provided) throw new Error("pglease/vitest: no run: add a globalSetup file whose default export is globalSetup(...) from pglease/vitest");
    return provided;
  };
  return registerDatabase({ beforeEach, afterEach, afterAll }, settings, process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? "1");
}
