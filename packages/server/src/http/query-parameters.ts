/**
 * Names of query parameters that carry a credential: Mandate's tokens (RFC 6749, RFC 6750 §2.3,
 * RFC 8693, OIDC Core `id_token_hint`), client credentials (RFC 6749 §2.3.1, RFC 7523) and
 * passwords. Names are compared in the form `normalizeParameterName` returns.
 */
export const CREDENTIAL_PARAMETERS: ReadonlySet<string> = new Set([
  'access_token',
  'refresh_token',
  'id_token',
  'id_token_hint',
  'subject_token',
  'actor_token',
  'client_secret',
  'client_assertion',
  'password',
]);

/**
 * Names whose values the request log also hides, besides the credential parameters: common
 * names for API keys, signatures and one-time codes (RFC 6749 `code`). The gateway forwards these
 * to the upstream as sent, so only the log hides them.
 */
const LOG_REDACTED_PARAMETERS: ReadonlySet<string> = new Set([...CREDENTIAL_PARAMETERS, 'api_key', 'apikey', 'key', 'token', 'code', 'sig', 'signature', 'secret', 'auth', 'session', 'sessionid']);

export const REDACTED_VALUE = '[redacted]';

/** How many rounds of percent-decoding a name gets, so that `%2561` (a double-encoded `a`) still reads as `a`. */
const DECODING_ROUNDS = 4;

/**
 * Returns the raw names of the parameters in a query string (without `?`), in order. Pairs
 * are split at `&` and also at `;`, which some servers accept as a separator too.
 */
export function readParameterNames(query: string): string[] {
  if (query === '') return [];
  return query.split(/[&;]/).map((pair) => {
    const equals = pair.indexOf('=');
    return equals === -1 ? pair : pair.slice(0, equals);
  });
}

/**
 * Reduces a raw parameter name to what the most lenient common server would read it as, so
 * that every spelling of a name matches. The steps:
 * - `+` is a space, and percent-decoding is repeated, also for `%uXXXX` escapes;
 * - anything after a NUL is dropped, then Unicode NFKC, lower case and trimming apply;
 * - array syntax is dropped, because PHP and Rack read `access_token[]` as `access_token`;
 * - `.`, space and an unclosed `[` become `_`, as PHP reads them (`access.token`);
 * - `-` becomes `_` too, because `access-token` names the same credential to a person.
 */
export function normalizeParameterName(rawName: string): string {
  let name = rawName;
  for (let round = 0; round < DECODING_ROUNDS; round += 1) {
    const decoded = decodeLeniently(name);
    if (decoded === name) break;
    name = decoded;
  }

  const nul = name.indexOf('\u0000');
  if (nul !== -1) name = name.slice(0, nul);
  name = name.normalize('NFKC').toLowerCase().trim();

  const bracket = name.indexOf('[');
  if (bracket > 0 && name.includes(']', bracket)) name = name.slice(0, bracket);
  return name.replace(/[.\s[-]/g, '_');
}

/** Returns the normalized name of the first credential parameter in a query string, or undefined. */
export function findCredentialParameter(query: string): string | undefined {
  return readParameterNames(query)
    .map(normalizeParameterName)
    .find((name) => CREDENTIAL_PARAMETERS.has(name));
}

/**
 * Returns a request target (path and query) for a log line: the value of every credential
 * parameter, API key, signature or code in its query is replaced with `[redacted]`, and
 * everything else is kept as sent.
 */
export function redactCredentialParameters(target: string): string {
  const queryStart = target.indexOf('?');
  if (queryStart === -1) return target;

  const query = target.slice(queryStart + 1).replace(/[^&;]+/g, (pair) => {
    const equals = pair.indexOf('=');
    const rawName = equals === -1 ? pair : pair.slice(0, equals);
    return LOG_REDACTED_PARAMETERS.has(normalizeParameterName(rawName)) ? `${rawName}=${REDACTED_VALUE}` : pair;
  });
  return `${target.slice(0, queryStart)}?${query}`;
}

/**
 * Decodes `+`, `%XX` and `%uXXXX` escapes once. Runs of `%XX` bytes are read as UTF-8, and a
 * malformed escape such as `%zz` stays as it is instead of failing the whole name.
 */
function decodeLeniently(text: string): string {
  return text
    .replace(/\+/g, ' ')
    .replace(/%u([0-9a-fA-F]{4})/g, (_escape, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    .replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'));
}
