/**
 * An RFC 9457 problem for the admin API. `type` is a stable URN that clients can switch on.
 */
export class Problem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly type: string;
  readonly extra: Record<string, unknown>;

  constructor(status: number, title: string, detail: string, options: { type?: string; extra?: Record<string, unknown>; cause?: unknown } = {}) {
    super(detail, { cause: options.cause });
    this.name = 'Problem';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = options.type ?? `urn:mandate:problem:${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
    this.extra = options.extra ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { type: this.type, title: this.title, status: this.status, detail: this.detail, ...this.extra };
  }
}

export const notFound = (what: string) => new Problem(404, 'Not Found', `${what} was not found.`);
export const conflict = (detail: string) => new Problem(409, 'Conflict', detail);
export const badRequest = (detail: string, extra?: Record<string, unknown>) => new Problem(400, 'Bad Request', detail, extra === undefined ? {} : { extra });
