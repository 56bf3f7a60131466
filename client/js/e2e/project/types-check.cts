// The CommonJS entry points carry types too (tsc --noEmit checks this file).
import pglease = require("pglease");
import jest = require("pglease/jest");

const client: pglease.Client = new pglease.Client({ url: "http://127.0.0.1:7432", timeoutSeconds: 5 });
const setup: () => Promise<void> = jest.globalSetup({ template: "app", migrations: "npm run migrate", migrationsFiles: ["migrations"] });
const acquire: (template: string, options?: pglease.AcquireOptions) => Promise<pglease.Lease> = client.acquire.bind(client);
const reset: (leaseId: string) => Promise<pglease.Lease> = client.reset.bind(client);
const outcome = (lease: pglease.Lease): pglease.ResetOutcome["result"] | undefined => lease.reset?.result;
const recycle = (template: pglease.Template): "reset" | "reclone" => template.pool.recycle;
void setup;
void acquire;
void reset;
void outcome;
void recycle;
