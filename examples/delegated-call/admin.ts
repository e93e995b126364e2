/** Maximum time for one admin API exchange. Each takes milliseconds, so reaching it means something hangs. */
const ADMIN_TIMEOUT_MS = 15_000;

/** A minimal admin API client: the example sets Mandate up the way an operator's script would. */
export class AdminApi {
  constructor(
    private readonly issuer: string,
    private readonly token: string,
  ) {}

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.issuer}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (error) {
      if (!(error instanceof DOMException && error.name === 'TimeoutError')) throw error;
      throw new Error(`Admin API ${method} ${path} timed out after ${ADMIN_TIMEOUT_MS} ms`, { cause: error });
    }
    if (!response.ok) throw new Error(`Admin API ${method} ${path} failed with ${response.status}: ${text}`);
    return (text === '' ? {} : JSON.parse(text)) as T;
  }
}
