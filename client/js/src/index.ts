/**
 * pglease: fresh PostgreSQL databases for tests, leased from pgleased. The client speaks
 * pgleased's HTTP API; `pglease/jest` and `pglease/vitest` give each test its own database.
 */
export { Client, DEFAULT_URL, type AcquireOptions, type ClientOptions } from "./client.js";
export { ApiError, PgleaseError, UnreachableError } from "./errors.js";
export { fingerprint, migrationFiles } from "./fingerprint.js";
export { connectionEnv, type Build, type Connection, type Ensured, type Lease, type ReleaseMode, type ResetOutcome, type Template } from "./lease.js";
export { parseDuration } from "./durations.js";
export { endRun, startRun, type PgleaseOptions, type RunSettings } from "./run.js";
export { buildTemplate, MigrationError, runMigrations, type TemplateVersion } from "./templates.js";
export { WorkerDatabases } from "./worker.js";
