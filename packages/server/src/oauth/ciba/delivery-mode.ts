/** CIBA Core 1.0 §4: the token delivery modes Mandate supports; push mode is not one of them. */
export const BACKCHANNEL_DELIVERY_MODES = ['poll', 'ping'] as const;
export type BackchannelDeliveryMode = (typeof BACKCHANNEL_DELIVERY_MODES)[number];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Returns why a `backchannel_client_notification_endpoint` is unacceptable, or undefined. CIBA
 * Core 1.0 §4 requires https; Mandate also accepts http on a loopback host, which only a server
 * with `allowLoopbackUpstreams` (tests and examples) will call. The URL must not carry
 * credentials or a fragment, because Mandate authenticates with the notification token instead.
 */
export function notificationEndpointProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return 'must be an absolute URL';
  const url = new URL(value);
  if (value.includes('#')) return 'must not contain a fragment';
  if (url.username !== '' || url.password !== '') return 'must not contain a user name or password';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  return 'must use https (http only on a loopback host, for tests)';
}

/** Returns true for a plain-http endpoint, which only a server with `allowLoopbackUpstreams` calls. */
export function isLoopbackHttpEndpoint(value: string): boolean {
  return URL.canParse(value) && new URL(value).protocol === 'http:';
}
