import canonicalizeModule from 'canonicalize';

// The package is CommonJS whose typings declare an ES default export; under NodeNext the
// default import is the function itself at run time.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/** Serializes a JSON value in the RFC 8785 canonical form. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('The value cannot be serialized as canonical JSON.');
  return text;
}
