module.exports = {
  globalSetup: "./jest.global-setup.cjs",
  globalTeardown: "pglease/jest/teardown",
  testMatch: ["<rootDir>/jest/**/*.test.cjs"],
  maxWorkers: 4,
};
