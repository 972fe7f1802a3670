/** Error with a message a user can act on (the API's `{ error, code }` body when it sent one). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** GET a JSON document from the API; every failure becomes an ApiError that says what to do. */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { accept: 'application/json' }, signal: signal ?? null });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(`API not reachable (${path}) — is the stack running? Try \`pnpm start\`.`, 'unreachable', 0);
  }
  if (!res.ok) {
    let body: { error?: string; code?: string } = {};
    try {
      body = (await res.json()) as typeof body;
    } catch {
      // Not JSON (e.g. a proxy error page): fall back to the status line.
    }
    if (!body.error && (res.status === 502 || res.status === 504)) {
      // A proxy (the dev server's, or one in front of the API) answering for an API that is not up.
      throw new ApiError(`API not reachable behind the proxy (${path}: HTTP ${res.status}) — is the stack running? Try \`pnpm start\`.`, 'unreachable', 0);
    }
    throw new ApiError(body.error ?? `${path} answered HTTP ${res.status} ${res.statusText}`, body.code ?? `http_${res.status}`, res.status);
  }
  return (await res.json()) as T;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
