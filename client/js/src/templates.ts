import { spawn } from "node:child_process";

import type { Client } from "./client.js";
import { ApiError, PgleaseError } from "./errors.js";
import { connectionEnv, type Build, type Template } from "./lease.js";

/** The suite's migrations failed on the build database; the build was aborted. */
export class MigrationError extends PgleaseError {
  override name = "MigrationError";
}

/** A ready version of a client-initialized template; `built` is true in the one caller that ran the migrations. */
export interface TemplateVersion {
  name: string;
  fingerprint: string;
  built: boolean;
  detail: Template;
}

/**
 * Ensures template `name` at `fingerprint`. Exactly one caller is told to build: it runs
 * `migrate(build)` against the empty `build.dsn` and finalizes (or aborts when it throws);
 * every other caller waits, up to `timeoutSeconds`, until the version is ready.
 */
export async function buildTemplate(
  client: Client,
  name: string,
  fingerprint: string,
  migrate: (build: Build) => Promise<unknown> | unknown,
  options: { timeoutSeconds?: number; buildTtlSeconds?: number } = {},
): Promise<TemplateVersion> {
  const timeout = options.timeoutSeconds ?? 600;
  const giveUpAt = Date.now() + timeout * 1000;
  for (;;) {
    const remaining = Math.max(0, Math.min((giveUpAt - Date.now()) / 1000, 600));
    let ensured;
    try {
      ensured = await client.ensureTemplate(name, fingerprint, { waitSeconds: remaining, buildTtlSeconds: options.buildTtlSeconds ?? timeout });
    } catch (error) {
      if (error instanceof ApiError && error.code === "template_building" && Date.now() < giveUpAt) continue;
      throw error;
    }
    if (ensured.state === "ready" || !ensured.build) return { name, fingerprint, built: false, detail: ensured.template };
    const build = ensured.build;
    try {
      await migrate(build);
    } catch (error) {
      await client.abortBuild(name, fingerprint, build.id).catch(() => undefined); // it expires anyway; the migration's error matters
      throw error;
    }
    return { name, fingerprint, built: true, detail: await client.finalizeBuild(name, fingerprint, build.id) };
  }
}

/**
 * Runs shell `command` in `cwd` with `DATABASE_URL` and `PG*` pointing at the build database;
 * resolves to its output, or rejects with MigrationError carrying the exit status and the output's tail.
 */
export function runMigrations(command: string, build: Build, cwd?: string, timeoutSeconds = 600): Promise<string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("PG") && key !== "DATABASE_URL") env[key] = value;
  }
  Object.assign(env, connectionEnv(build));
  return new Promise((resolve, reject) => {
    const child = spawn(command, { shell: true, cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutSeconds * 1000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new MigrationError(`pglease: migrations \`${command}\` could not start: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(output);
      const tail = output.split("\n").slice(-30).join("\n");
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      reject(new MigrationError(`pglease: migrations \`${command}\` ${how} on template ${build.template}:\n${tail}`));
    });
  });
}
