import { mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { globalSetup } from "pglease/vitest";

const pglease = globalSetup({ template: "e2e_vitest", migrations: "node migrate.mjs", migrationsFiles: ["migrate.mjs", "migrations"] });

export default async function setup(project: Parameters<typeof pglease>[0]) {
  // Where the tests of different workers meet.
  const meetingDir = mkdtempSync(path.join(import.meta.dirname, ".meeting-"));
  project.provide("meetingDir", meetingDir);
  const teardown = await pglease(project);
  return async () => {
    await teardown();
    rmSync(meetingDir, { recursive: true, force: true });
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    meetingDir: string;
  }
}
