import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["./vitest.global-setup.mts"],
    include: ["vitest/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 4,
    // CI runs this beside other suites on 2 cores, against a sanitizer build of pgleased.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
