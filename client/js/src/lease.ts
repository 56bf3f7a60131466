/** Where a database is and how to log in to it. */
export interface Connection {
  database: string;
  /** A libpq connection URI, `postgresql://user:password@host:port/database` (node-postgres takes it as `connectionString`). */
  dsn: string;
  host: string;
  port: number;
  user: string;
  password: string;
}

/**
 * How a reset made the database fresh: `reset` (undone in place, sessions kept) or `reclone`
 * (sessions ended, dropped and cloned again under the same name), with the server's `reason`
 * for a reclone (empty after a reset in place).
 */
export interface ResetOutcome {
  result: "reset" | "reclone";
  reason: string;
}

/**
 * One worker's right to one clone until `expiresAt`; whoever holds `id` may renew, reset or
 * release it. `reset` says how the last reset went, on the lease a reset returned (absent on a
 * lease as acquired).
 */
export interface Lease extends Connection {
  id: string;
  template: string;
  fingerprint: string;
  owner: string;
  labels: Record<string, string>;
  acquiredAt: Date;
  expiresAt: Date;
  backend: string;
  reset?: ResetOutcome;
}

/** An empty template database this caller must migrate, then finalize or abort before `expiresAt`. */
export interface Build extends Connection {
  id: string;
  template: string;
  fingerprint: string;
  expiresAt: Date;
}

/** A template's detail: state, fingerprint, last build error and pool counts. */
export interface Template {
  name: string;
  fingerprint: string;
  state: "building" | "ready" | "failed";
  error: string;
  source: "migrations" | "database" | "command" | "client";
  pool: {
    idle: number;
    leased: number;
    creating: number;
    dropping: number;
    kept: number;
    resetting: number;
    waiters: number;
    min_idle: number;
    max_total: number;
    /** How a released or expired clone is made fresh: reset in place, or dropped and cloned again. */
    recycle: "reset" | "reclone";
  };
  /** The fingerprints of the versions that serve leases, the newest first. */
  versions: string[];
}

/** The answer to ensureTemplate: `ready`, or `build` when this caller must build it. */
export interface Ensured {
  state: "ready" | "build";
  template: Template;
  build?: Build;
}

export type ReleaseMode = "recycle" | "reuse" | "keep";

type Json = Record<string, unknown>;

function connection(body: Json): Connection {
  return {
    database: String(body.database),
    dsn: String(body.dsn),
    host: String(body.host),
    port: Number(body.port),
    user: String(body.user),
    password: String(body.password),
  };
}

export function leaseFromJson(body: Json): Lease {
  const reset = body.reset as { result?: string; reason?: string } | undefined;
  const lease: Lease = {
    ...connection(body),
    id: String(body.id),
    template: String(body.template),
    fingerprint: String(body.fingerprint),
    owner: String(body.owner ?? ""),
    labels: { ...((body.labels as Record<string, string>) ?? {}) },
    acquiredAt: new Date(String(body.acquired_at)),
    expiresAt: new Date(String(body.expires_at)),
    backend: String(body.backend),
  };
  if (reset) lease.reset = { result: reset.result === "reclone" ? "reclone" : "reset", reason: String(reset.reason ?? "") };
  return lease;
}

export function buildFromJson(body: Json): Build {
  return {
    ...connection(body),
    id: String(body.id),
    template: String(body.template),
    fingerprint: String(body.fingerprint),
    expiresAt: new Date(String(body.expires_at)),
  };
}

/** `DATABASE_URL` and libpq's `PG*` variables for a database. */
export function connectionEnv(c: Connection): Record<string, string> {
  return {
    DATABASE_URL: c.dsn,
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGUSER: c.user,
    PGPASSWORD: c.password,
    PGDATABASE: c.database,
  };
}
