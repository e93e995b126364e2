import type { ResourceAction } from '../resources/registry.ts';
import { pathHasPrefix } from './path.ts';

/**
 * Finds the action that covers a request: among the actions whose method matches (or is `*`)
 * and whose `path_prefix` covers the decoded path on a segment boundary, the one with the
 * longest prefix. On equal prefixes an exact method beats `*`, then the name decides, so the
 * result never depends on row order. Returns undefined when no action covers the request.
 */
export function matchAction(actions: ResourceAction[], method: string, decodedPath: string): ResourceAction | undefined {
  const upperMethod = method.toUpperCase();
  const candidates = actions.filter((action) => (action.method === '*' || action.method.toUpperCase() === upperMethod) && pathHasPrefix(decodedPath, action.path_prefix));

  candidates.sort((a, b) => {
    const byPrefix = prefixLength(b.path_prefix) - prefixLength(a.path_prefix);
    if (byPrefix !== 0) return byPrefix;
    const byMethod = Number(a.method === '*') - Number(b.method === '*');
    if (byMethod !== 0) return byMethod;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  return candidates[0];
}

function prefixLength(prefix: string): number {
  return prefix.endsWith('/') ? prefix.length - 1 : prefix.length;
}
