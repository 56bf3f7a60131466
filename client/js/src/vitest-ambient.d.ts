// The part of Vitest's API pglease/vitest calls, so that building this package needs no Vitest;
// users' own Vitest provides the real module (a peer dependency).
declare module "vitest" {
  export function beforeEach(fn: () => Promise<void>, timeout?: number): void;
  export function afterEach(fn: () => Promise<void>, timeout?: number): void;
  export function afterAll(fn: () => Promise<void> | void, timeout?: number): void;
  export function inject(key: string): unknown;
}
