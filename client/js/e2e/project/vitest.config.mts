import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["./vitest.global-setup.mts"],
    include: ["vitest/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 4,
  },
});
