import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";

const SKIPPED_DIRS = new Set(["__pycache__", ".git", "node_modules", ".venv", ".pytest_cache"]);

const nameOf = (file: string, base: string) => path.relative(base, file).split(path.sep).join("/");

/**
 * The files `paths` name, relative to `base`: files as they are, directories walked (hidden
 * entries and caches left out); sorted by their path relative to `base`.
 */
export function migrationFiles(paths: string[], base: string): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith(".")) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(full);
      } else if (entry.isFile() && !entry.name.endsWith(".pyc")) {
        found.add(full);
      }
    }
  };
  for (const entry of paths) {
    const full = path.resolve(base, entry);
    if (!existsSync(full)) throw new Error(`pglease: migration file or directory ${JSON.stringify(entry)} not found (relative to ${base})`);
    if (statSync(full).isDirectory()) walk(full);
    else found.add(full);
  }
  return [...found].sort((a, b) => {
    const [x, y] = [nameOf(a, base), nameOf(b, base)];
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * 64 hex digits: the SHA-256 of `command` and of each file's path (relative to `base`) and
 * contents, so that any change to either builds a new template version. The Python package
 * computes the same value for the same files.
 */
export function fingerprint(paths: string[], base: string, command = ""): string {
  const digest = createHash("sha256");
  digest.update(Buffer.concat([Buffer.from("pglease-fingerprint-v1\0command\0"), Buffer.from(command), Buffer.from("\0")]));
  for (const file of migrationFiles(paths, base)) {
    const content = readFileSync(file);
    digest.update(Buffer.from(`file\0${nameOf(file, base)}\0${content.length}\0`));
    digest.update(content);
  }
  return digest.digest("hex");
}
