import { canonicalJson } from '../util/canonical-json.ts';

/**
 * RFC 8785 forms of argument objects already serialized. The items of an AuthZEN batch share the
 * request's default `context.arguments` object, which may be up to the body limit in size, so it
 * is serialized once for all of them. Argument objects come from parsed JSON and are never changed
 * afterwards.
 */
const canonicalForms = new WeakMap<object, string>();

/** Returns the RFC 8785 canonical JSON of a call's arguments; throws as `canonicalJson` does for a value without one. */
export function canonicalArguments(values: Readonly<Record<string, unknown>>): string {
  const known = canonicalForms.get(values);
  if (known !== undefined) return known;

  const form = canonicalJson(values);
  canonicalForms.set(values, form);
  return form;
}
