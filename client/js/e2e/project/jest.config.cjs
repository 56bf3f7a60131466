module.exports = {
  globalSetup: "./jest.global-setup.cjs",
  globalTeardown: "pglease/jest/teardown",
  testMatch: ["<rootDir>/jest/**/*.test.cjs"],
  maxWorkers: 4,
  // CI runs this beside other suites on 2 cores, against a sanitizer build of pgleased.
  testTimeout: 60_000,
};
