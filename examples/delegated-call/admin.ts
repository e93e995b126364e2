/** A minimal admin API client: the example sets Mandate up the way an operator's script would. */
export class AdminApi {
  constructor(
    private readonly issuer: string,
    private readonly token: string,
  ) {}

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.issuer}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`Admin API ${method} ${path} failed with ${response.status}: ${text}`);
    return (text === '' ? {} : JSON.parse(text)) as T;
  }
}
