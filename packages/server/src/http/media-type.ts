/** Returns the media type of a Content-Type value (RFC 9110 §8.3.1) in lower case, without its parameters. */
export function mediaTypeEssence(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}
