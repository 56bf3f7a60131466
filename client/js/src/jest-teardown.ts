import { globalTeardown } from "./jest.js";

/** Jest's `globalTeardown: "pglease/jest/teardown"`. */
export default globalTeardown;
