import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { Client } from "./client.js";
import { ApiError } from "./errors.js";
import { fingerprint } from "./fingerprint.js";
import { buildTemplate, runMigrations } from "./templates.js";
import { parseDuration } from "./durations.js";
import type { FreshCounts, WorkerState } from "./worker.js";

/** How a test run uses pglease: given to the test runner's global setup. */
export interface PgleaseOptions {
  /** The template to lease databases of; default `$PGLEASE_TEMPLATE`. */
  template?: string;
  /** pgleased's address; default `$PGLEASE_URL`, else http://127.0.0.1:7432. */
  url?: string;
  /** The daemon's token; default `$PGLEASE_TOKEN`. */
  token?: string;
  /**
   * Build the template from this shell command (e.g. `npx prisma migrate deploy`), run once
   * with `DATABASE_URL` and `PG*` pointing at the new template database.
   */
  migrations?: string;
  /** Files and directories the migrations read: the template version's fingerprint hashes them. */
  migrationsFiles?: string[];
  /** Where `migrations` runs and `migrationsFiles` are found; default the current directory. */
  cwd?: string;
  /** Lease time to live, renewed while tests run: seconds or `10m`; default 10 minutes. */
  ttl?: number | string;
  /** How long to wait for a database when the pool is empty; default 2 minutes. */
  wait?: number | string;
}

/** What every test worker of a run needs (no secrets: the token stays in the environment). */
export interface RunSettings {
  url: string;
  template: string;
  /** The version this run built or found, when it has migrations of its own: every lease names it. */
  fingerprint?: string;
  ttlSeconds: number;
  waitSeconds: number;
  /** A directory of this run's: each worker notes its lease there, for the teardown to release. */
  runDir: string;
}

const SETTINGS_FILE = "settings.json";

/** Ensures the template (building it from `migrations` when this is the first caller) and prepares the run directory. */
export async function startRun(options: PgleaseOptions = {}): Promise<RunSettings> {
  const template = options.template || process.env.PGLEASE_TEMPLATE;
  if (!template) throw new Error("pglease: no template: pass { template: 'name' } to globalSetup, or set PGLEASE_TEMPLATE");
  if (options.migrationsFiles?.length && !options.migrations) {
    throw new Error("pglease: migrationsFiles is set but migrations is not: name the command that builds the template");
  }
  if (options.token) process.env.PGLEASE_TOKEN = options.token;
  const client = new Client({ url: options.url, token: options.token });
  const cwd = path.resolve(options.cwd ?? process.cwd());
  let version: string | undefined;
  try {
    if (options.migrations) {
      const command = options.migrations;
      version = fingerprint(options.migrationsFiles ?? [], cwd, command);
      await buildTemplate(client, template, version, (build) => runMigrations(command, build, cwd), { timeoutSeconds: 600 });
    } else {
      await client.template(template);
    }
  } catch (error) {
    throw explained(error);
  }
  const settings: RunSettings = {
    url: client.url,
    template,
    ...(version ? { fingerprint: version } : {}),
    ttlSeconds: parseDuration(options.ttl ?? 600),
    waitSeconds: parseDuration(options.wait ?? 120),
    runDir: mkdtempSync(path.join(os.tmpdir(), "pglease-run-")),
  };
  writeFileSync(path.join(settings.runDir, SETTINGS_FILE), JSON.stringify(settings));
  return settings;
}

/** The settings a run directory holds. */
export function readRun(runDir: string): RunSettings {
  return JSON.parse(readFileSync(path.join(runDir, SETTINGS_FILE), "utf8")) as RunSettings;
}

/**
 * Releases every worker's lease (a killed worker's included), removes the run directory and
 * prints how the tests got their databases (`pglease: 20 tests got a fresh database: 14 reset
 * in place, 2 cloned again, 4 on a new lease`); returns those lines.
 */
export async function endRun(settings: RunSettings): Promise<string[]> {
  const client = new Client({ url: settings.url });
  const failures: unknown[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(settings.runDir).filter((name) => name.startsWith("worker-") && name.endsWith(".json"));
  } catch {
    return []; // already ended
  }
  const total: FreshCounts = { reset: 0, reclone: 0, leased: 0, reasons: {} };
  for (const name of files) {
    const state = JSON.parse(readFileSync(path.join(settings.runDir, name), "utf8")) as WorkerState;
    total.reset += state.fresh.reset;
    total.reclone += state.fresh.reclone;
    total.leased += state.fresh.leased;
    for (const [reason, count] of Object.entries(state.fresh.reasons)) total.reasons[reason] = (total.reasons[reason] ?? 0) + count;
    if (!state.lease) continue;
    await client.release(state.lease.id, "recycle").catch((error) => {
      if (!(error instanceof ApiError && error.code === "unknown_lease")) failures.push(error);
    });
  }
  rmSync(settings.runDir, { recursive: true, force: true });
  const tests = total.reset + total.reclone + total.leased;
  const lines = tests === 0 ? [] : [
    `pglease: ${tests} test${tests === 1 ? "" : "s"} got a fresh database: ${total.reset} reset in place, ${total.reclone} cloned again, ${total.leased} on a new lease`,
    ...Object.entries(total.reasons).sort((a, b) => b[1] - a[1]).map(([reason, count]) => `pglease: cloned again ${count}x: ${reason}`),
  ];
  for (const line of lines) console.log(line);
  if (failures.length) throw failures[0];
  return lines;
}

/** An error with one line that says what to do, for a test runner to show. */
export function explained(error: unknown): Error {
  if (error instanceof Error && error.name === "UnreachableError") {
    return new Error(`pglease: ${error.message}. Start pgleased, or point PGLEASE_URL (or the url option) at it.`);
  }
  if (error instanceof ApiError && error.code === "unauthorized") {
    return new Error(`pglease: ${error.serverMessage}: set PGLEASE_TOKEN to the daemon's token.`);
  }
  if (error instanceof Error) return error.message.startsWith("pglease:") ? error : Object.assign(error, { message: `pglease: ${error.message}` });
  return new Error(`pglease: ${String(error)}`);
}
