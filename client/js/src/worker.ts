import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { Client } from "./client.js";
import { ApiError, PgleaseError } from "./errors.js";
import type { Lease } from "./lease.js";
import type { RunSettings } from "./run.js";

/**
 * How long a reset is retried while a session an earlier test left behind is still inside a
 * transaction or running a query, before the worker gives its database up for a new lease.
 */
const BUSY_PATIENCE_MS = 2_000;

/** How the tests of a worker got their databases, for the run's summary. */
export interface FreshCounts {
  reset: number;
  reclone: number;
  leased: number;
  /** Why databases were cloned again, and how often. */
  reasons: Record<string, number>;
}

/** What a worker keeps in the run directory, across its test files. */
export interface WorkerState {
  /** This worker's lease, as it was last seen; the run's teardown releases it. */
  lease: Lease | null;
  /** The worker's clone is as leased: the next test needs no reset. */
  pristine: boolean;
  fresh: FreshCounts;
}

class StillBusy extends PgleaseError {}

function revive(lease: Lease | null): Lease | null {
  return lease && { ...lease, acquiredAt: new Date(lease.acquiredAt), expiresAt: new Date(lease.expiresAt) };
}

/**
 * One test worker's lease (kept across its test files in the run directory, renewed while tests
 * run) and, for each test, the worker's database fresh from the template: as leased for the
 * first test, reset through the lease (`POST /v1/leases/{id}/reset`) for every later one.
 */
export class WorkerDatabases {
  private readonly client: Client;
  private readonly file: string;
  private state: WorkerState;
  private renewing: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly settings: RunSettings,
    private readonly worker: string,
  ) {
    this.client = new Client({ url: settings.url });
    this.file = path.join(settings.runDir, `worker-${worker.replace(/[^\w.-]/g, "_")}.json`);
    const saved = existsSync(this.file) ? (JSON.parse(readFileSync(this.file, "utf8")) as WorkerState) : undefined;
    this.state = saved
      ? { ...saved, lease: revive(saved.lease) }
      : { lease: null, pristine: false, fresh: { reset: 0, reclone: 0, leased: 0, reasons: {} } };
  }

  /** This worker's lease, acquired on first use (and again after one was given up). */
  async workerLease(): Promise<Lease> {
    if (!this.state.lease) {
      this.state.lease = await this.client.acquire(this.settings.template, {
        ttlSeconds: this.settings.ttlSeconds,
        waitSeconds: this.settings.waitSeconds,
        owner: `${this.runnerName()} worker ${this.worker} ${os.hostname()}:${process.pid}`,
        labels: { worker: this.worker },
        // The version this run built: another job's newer migrations of the same template name do not reach it.
        fingerprint: this.settings.fingerprint,
      });
      this.state.pristine = true;
      this.save();
    }
    this.startRenewing();
    return this.state.lease;
  }

  /** The worker's database in the template's exact state, for one test; the lease's `reset` says how (absent on a new lease). */
  async fresh(): Promise<Lease> {
    const lease = await this.workerLease();
    if (this.state.pristine) return this.counted(lease);
    let busy: string | undefined;
    try {
      this.state.lease = await this.reset(lease);
      return this.counted(this.state.lease);
    } catch (error) {
      if (error instanceof StillBusy) {
        busy = error.message;
        await this.giveUp(lease, true);
      } else if (error instanceof ApiError && error.code === "unknown_lease") {
        // It ended behind the worker's back (released by a test, or expired while the machine
        // was suspended): lease another.
        await this.giveUp(lease, false);
      } else {
        throw error;
      }
    }
    const replacement = this.counted(await this.workerLease());
    if (busy !== undefined) {
      console.warn(
        `pglease: database ${lease.database} still had a session inside a transaction or running a query ` +
          `${BUSY_PATIENCE_MS / 1000} s after its test ended (${busy}); it was released and this test got a new lease, ` +
          `${replacement.database}. End the clients a test opens (client.end()) in its afterEach.`,
      );
    }
    return replacement;
  }

  /** Stops renewing until the next test (the worker's lease stays, for its next test file). */
  suspend(): void {
    if (this.renewing) clearInterval(this.renewing);
    this.renewing = undefined;
  }

  private counted(lease: Lease): Lease {
    const fresh = this.state.fresh;
    this.state.pristine = false;
    if (!lease.reset) fresh.leased += 1;
    else if (lease.reset.result === "reset") fresh.reset += 1;
    else {
      fresh.reclone += 1;
      const reason = lease.reset.reason || "no reason given";
      fresh.reasons[reason] = (fresh.reasons[reason] ?? 0) + 1;
    }
    this.save();
    return lease;
  }

  private async giveUp(lease: Lease, release: boolean): Promise<void> {
    this.state.lease = null;
    this.save();
    if (!release) return;
    // Recycling ends the sessions still on it, the one left in a transaction too.
    await this.client.release(lease.id, "recycle").catch((error) => {
      if (!(error instanceof ApiError && error.code === "unknown_lease")) throw error;
    });
  }

  private runnerName(): string {
    return process.env.VITEST_POOL_ID ? "vitest" : process.env.JEST_WORKER_ID ? "jest" : "node";
  }

  private async reset(lease: Lease): Promise<Lease> {
    const giveUpAt = Date.now() + BUSY_PATIENCE_MS;
    let pause = 50;
    for (;;) {
      try {
        return await this.client.reset(lease.id);
      } catch (error) {
        if (!(error instanceof ApiError && error.code === "sessions_busy")) throw error;
        if (Date.now() + pause > giveUpAt) throw new StillBusy(error.serverMessage);
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, (error.retryAfter ?? 1) * 1000, 500);
      }
    }
  }

  private startRenewing(): void {
    if (this.renewing) return;
    const every = Math.max(500, (this.settings.ttlSeconds * 1000) / 3);
    this.renewing = setInterval(() => {
      const id = this.state.lease?.id;
      if (!id) return;
      this.client.renew(id, this.settings.ttlSeconds).catch((error) => {
        // A lease that ended meanwhile is found out by the next reset.
        if (!(error instanceof ApiError && error.code === "unknown_lease")) console.warn(`pglease: renewing lease ${id.slice(0, 8)}… failed: ${error}`);
      });
    }, every);
    this.renewing.unref?.();
  }

  private save(): void {
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(this.state));
    renameSync(temporary, this.file);
  }
}
