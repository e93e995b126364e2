import type { FastifyInstance } from 'fastify';
import { InvalidRequest } from '../oauth/errors.ts';

/** A parsed `application/x-www-form-urlencoded` body; a repeated name gives an array. */
export type FormBody = Record<string, string | string[]>;

const MAX_FORM_BYTES = 64 * 1024;

/** Bodies that this parser produced, so `formBody` can tell them from parsed JSON. */
const parsedForms = new WeakSet<object>();

/** Parses form bodies keeping repeated names, so endpoints can reject duplicates (RFC 6749 §3.1, §3.2). */
export function registerFormParser(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: MAX_FORM_BYTES }, (_request, body, done) => {
    const form: FormBody = {};
    for (const [name, value] of new URLSearchParams(body as string)) {
      const existing = form[name];
      if (existing === undefined) form[name] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else form[name] = [existing, value];
    }
    parsedForms.add(form);
    done(null, form);
  });
}

/** Returns the single value of a parameter; a repeated parameter is invalid_request. */
export function singleParam(form: FormBody | Record<string, unknown>, name: string): string | undefined {
  const value = form[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new InvalidRequest(`The ${name} parameter must appear only once.`);
  return value;
}

export function requiredParam(form: FormBody | Record<string, unknown>, name: string): string {
  const value = singleParam(form, name);
  if (value === undefined) throw new InvalidRequest(`The ${name} parameter is missing.`);
  return value;
}

/** Returns every value of a parameter that may repeat, such as RFC 8707 `resource`. */
export function repeatedParam(form: FormBody | Record<string, unknown>, name: string): string[] {
  const value = form[name];
  if (value === undefined || value === '') return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.map(String);
  throw new InvalidRequest(`The ${name} parameter is malformed.`);
}

/** Reads the form body of a request, which must be form-encoded (RFC 6749 §3.2 and §4.1.3); a JSON object is rejected. */
export function formBody(body: unknown): FormBody {
  if (body === null || typeof body !== 'object' || !parsedForms.has(body)) {
    throw new InvalidRequest('The request body must be application/x-www-form-urlencoded.');
  }
  return body as FormBody;
}
