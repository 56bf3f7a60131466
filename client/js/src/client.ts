import { ApiError, PgleaseError, UnreachableError } from "./errors.js";
import {
  buildFromJson,
  leaseFromJson,
  type Ensured,
  type Lease,
  type ReleaseMode,
  type Template,
} from "./lease.js";

export const DEFAULT_URL = "http://127.0.0.1:7432";

export interface ClientOptions {
  /** pgleased's address; default `$PGLEASE_URL`, else http://127.0.0.1:7432. */
  url?: string;
  /** The daemon's bearer token; default `$PGLEASE_TOKEN`. */
  token?: string;
  /** Seconds each call may take (plus the wait it asks the server for); 503 `not_ready` is retried until then. Default 30. */
  timeoutSeconds?: number;
}

export interface AcquireOptions {
  ttlSeconds?: number;
  waitSeconds?: number;
  owner?: string;
  labels?: Record<string, string>;
  /**
   * Exactly this version of the template (as given to `ensureTemplate`, or as a lease reports
   * it); rejects with ApiError 404 `unknown_version` when there is none. Default: the newest.
   */
  fingerprint?: string;
}

type Json = Record<string, unknown>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function whole(seconds: number, name: string, minimum = 1): number {
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`${name} must be a non-negative number, not ${seconds}`);
  return Math.max(minimum, Math.round(seconds));
}

const segment = (value: string) => encodeURIComponent(value);

/** A client of pgleased's HTTP API (proto/openapi.yaml) on Node's own fetch. */
export class Client {
  readonly url: string;
  readonly token: string | undefined;
  readonly timeoutSeconds: number;

  constructor(options: ClientOptions = {}) {
    this.url = (options.url || process.env.PGLEASE_URL || DEFAULT_URL).replace(/\/+$/, "");
    this.token = options.token ?? (process.env.PGLEASE_TOKEN || undefined);
    this.timeoutSeconds = options.timeoutSeconds ?? 30;
    if (!/^https?:\/\/[^/]+/.test(this.url)) throw new RangeError(`pglease URL must look like http://host:port, not ${JSON.stringify(this.url)}`);
  }

  /** Leases a clone of `template`, waiting up to `waitSeconds` for one. */
  async acquire(template: string, options: AcquireOptions = {}): Promise<Lease> {
    const body: Json = {};
    if (options.ttlSeconds !== undefined) body.ttl_seconds = whole(options.ttlSeconds, "ttlSeconds");
    if (options.waitSeconds !== undefined) body.wait_seconds = whole(options.waitSeconds, "waitSeconds", 0);
    if (options.owner) body.owner = options.owner;
    if (options.labels && Object.keys(options.labels).length > 0) body.labels = options.labels;
    if (options.fingerprint) body.fingerprint = options.fingerprint;
    const answer = await this.call("POST", `/v1/templates/${segment(template)}/leases`, body, options.waitSeconds ?? 30);
    return leaseFromJson(answer as Json);
  }

  /** Moves the lease's expiry to now + `ttlSeconds` (default the template's TTL). */
  async renew(leaseId: string, ttlSeconds?: number): Promise<Lease> {
    const body = ttlSeconds === undefined ? {} : { ttl_seconds: whole(ttlSeconds, "ttlSeconds") };
    return leaseFromJson((await this.call("POST", `/v1/leases/${segment(leaseId)}/renew`, body)) as Json);
  }

  /**
   * Brings the leased clone back to the template's state; the lease (id, database, DSN, expiry)
   * stays, and the answer's `reset` says whether it was reset in place (idle sessions stay
   * connected) or cloned again (sessions ended) and why. Rejects with ApiError 409
   * `sessions_busy` (`retryAfter` 1) while a session on it is inside a transaction or running a
   * query; the message names their pids.
   */
  async reset(leaseId: string): Promise<Lease> {
    return leaseFromJson((await this.call("POST", `/v1/leases/${segment(leaseId)}/reset`, {})) as Json);
  }

  /** Ends the lease: `recycle` (default: made fresh for the next lease), `reuse` (it wrote nothing) or `keep` (for `keepSeconds`). */
  async release(leaseId: string, mode: ReleaseMode = "recycle", keepSeconds?: number): Promise<void> {
    if (!["recycle", "reuse", "keep"].includes(mode)) throw new RangeError(`release mode must be recycle, reuse or keep, not ${mode}`);
    const query = new URLSearchParams({ mode });
    if (keepSeconds !== undefined) {
      if (mode !== "keep") throw new RangeError("keepSeconds applies to mode 'keep' only");
      query.set("keep_seconds", String(whole(keepSeconds, "keepSeconds")));
    }
    await this.call("DELETE", `/v1/leases/${segment(leaseId)}?${query}`);
  }

  /** The live lease with this id (404 `unknown_lease` once it ended). */
  async lease(leaseId: string): Promise<Lease> {
    return leaseFromJson((await this.call("GET", `/v1/leases/${segment(leaseId)}`)) as Json);
  }

  /** Every live lease, as listed (without ids, DSNs and passwords). */
  async leases(): Promise<Json[]> {
    return ((await this.call("GET", "/v1/leases")) as { leases: Json[] }).leases;
  }

  async template(name: string): Promise<Template> {
    return (await this.call("GET", `/v1/templates/${segment(name)}`)) as Template;
  }

  async templates(): Promise<Template[]> {
    return ((await this.call("GET", "/v1/templates")) as { templates: Template[] }).templates;
  }

  /**
   * Asks for client-initialized template `name` at `fingerprint`: `ready`, or `build` when this
   * caller must migrate `build.dsn` and then finalize or abort. 503 `template_building` when
   * another caller builds it for longer than `waitSeconds`.
   */
  async ensureTemplate(name: string, fingerprint: string, options: { waitSeconds?: number; buildTtlSeconds?: number } = {}): Promise<Ensured> {
    const body: Json = { fingerprint };
    if (options.waitSeconds !== undefined) body.wait_seconds = whole(options.waitSeconds, "waitSeconds", 0);
    if (options.buildTtlSeconds !== undefined) body.build_ttl_seconds = whole(options.buildTtlSeconds, "buildTtlSeconds");
    const answer = (await this.call("PUT", `/v1/templates/${segment(name)}`, body, options.waitSeconds ?? 30)) as Json;
    const ensured: Ensured = { state: answer.state as Ensured["state"], template: answer.template as Template };
    if (answer.build) ensured.build = buildFromJson(answer.build as Json);
    return ensured;
  }

  /** Declares the build's migrations done; the template is ready at `fingerprint`. */
  async finalizeBuild(name: string, fingerprint: string, buildId: string): Promise<Template> {
    return (await this.call("POST", `/v1/templates/${segment(name)}/builds/${segment(fingerprint)}/finalize`, { build_id: buildId })) as Template;
  }

  /** Gives the build up; the next caller asking for `fingerprint` builds it. */
  async abortBuild(name: string, fingerprint: string, buildId: string): Promise<void> {
    await this.call("POST", `/v1/templates/${segment(name)}/builds/${segment(fingerprint)}/abort`, { build_id: buildId });
  }

  /** One call; while pgleased starts (503 `not_ready`) it is made again until the timeout. */
  private async call(method: string, target: string, body?: Json, extraWaitSeconds = 0): Promise<unknown> {
    const giveUpAt = Date.now() + this.timeoutSeconds * 1000;
    for (;;) {
      try {
        return await this.exchange(method, target, body, this.timeoutSeconds + extraWaitSeconds);
      } catch (error) {
        const pause = Math.min(Math.max((error as ApiError).retryAfter ?? 1, 1), 5) * 1000;
        if (!(error instanceof ApiError) || error.status !== 503 || error.code !== "not_ready" || Date.now() + pause >= giveUpAt) throw error;
        await sleep(pause);
      }
    }
  }

  private async exchange(method: string, target: string, body: Json | undefined, limitSeconds: number): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json", "user-agent": "pglease-js" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.url + target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(limitSeconds * 1000),
      });
      text = await response.text();
    } catch (error) {
      throw new UnreachableError(this.url, describe(error));
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.status >= 400) {
      const problem = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      const retryAfter = Number(response.headers.get("retry-after"));
      throw new ApiError(
        response.status,
        problem?.code || `http_${response.status}`,
        problem?.message || `pgleased answered ${response.status} to ${method} ${target}`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
      );
    }
    if (text && parsed === undefined) throw new PgleaseError(`pgleased sent a body that is not JSON to ${method} ${target}`);
    return parsed;
  }
}

function describe(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timed out";
  if (e?.cause?.code === "ECONNREFUSED") return "connection refused";
  return e?.cause?.message || e?.message || String(error);
}
