/** Anything the pglease client throws. */
export class PgleaseError extends Error {
  override name = "PgleaseError";
}

/** No pgleased answered at the URL (refused, timed out, or the connection broke). */
export class UnreachableError extends PgleaseError {
  override name = "UnreachableError";
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach pgleased at ${url}: ${reason}`);
  }
}

/**
 * pgleased answered with an error: its HTTP `status`, its stable `code` (`pool_exhausted`,
 * `unknown_lease`, `sessions_busy`, ...) and `message`; `retryAfter` is the `Retry-After` header
 * in seconds when it sent one.
 */
export class ApiError extends PgleaseError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly retryAfter?: number,
  ) {
    super(`${serverMessage} (${status} ${code})`);
  }
}
