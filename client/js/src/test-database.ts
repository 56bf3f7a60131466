import { connectionEnv, type Lease } from "./lease.js";
import type { RunSettings } from "./run.js";
import { WorkerDatabases } from "./worker.js";

/** The current test's database: fresh from the template for every test. Read it inside a test or its hooks. */
export interface TestDatabase {
  readonly lease: Lease;
  readonly dsn: string;
  readonly database: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** `DATABASE_URL` and `PG*` for this test's database. */
  env(): Record<string, string>;
}

/** The hooks of a test runner, as useDatabase registers them. */
export interface Hooks {
  beforeEach(fn: () => Promise<void>, timeout?: number): void;
  afterEach(fn: () => Promise<void>, timeout?: number): void;
  afterAll(fn: () => Promise<void> | void, timeout?: number): void;
}

/** Registers the hooks that give each test of a file its fresh database, and returns a live view of it. */
export function registerDatabase(hooks: Hooks, settings: () => RunSettings, worker: string): TestDatabase {
  let databases: WorkerDatabases | undefined;
  let current: Lease | undefined;
  const timeout = () => (settings().waitSeconds + 30) * 1000;
  hooks.beforeEach(async () => {
    databases ??= new WorkerDatabases(settings(), worker);
    current = await databases.fresh();
  }, timeout());
  // The database is reset at the start of the next test (or released by the run's teardown):
  // by then every afterEach and afterAll of the test's own has ended the clients it opened,
  // whatever order the runner calls hooks in.
  hooks.afterEach(async () => {
    current = undefined;
  });
  hooks.afterAll(() => databases?.suspend());
  const now = (): Lease => {
    if (!current) throw new Error("pglease: the test database exists only while a test runs (in the test, beforeEach or afterEach)");
    return current;
  };
  return {
    get lease() { return now(); },
    get dsn() { return now().dsn; },
    get database() { return now().database; },
    get host() { return now().host; },
    get port() { return now().port; },
    get user() { return now().user; },
    get password() { return now().password; },
    env: () => connectionEnv(now()),
  };
}
