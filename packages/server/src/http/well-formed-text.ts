/** A high surrogate not followed by a low one, or a low surrogate without a high one before it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Tells whether a string is well-formed UTF-16, so that it has a UTF-8 form. The ES2023 typings lack `String.prototype.isWellFormed`. */
export function isWellFormedText(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}
