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

/**
 * Returns why a call with this method and decoded path is not a call of `action`, or undefined
 * when it is. The method or path may be unknown: only what is known is checked. A path under the
 * action's prefix may still belong to a more specific action, because the gateway maps each call
 * to the action with the longest matching prefix.
 */
export function actionMismatch(actions: ResourceAction[], action: ResourceAction, method: string | undefined, decodedPath: string | undefined): string | undefined {
  const covered = `${action.method} ${action.path_prefix}`;
  if (method !== undefined && action.method !== '*' && action.method.toUpperCase() !== method.toUpperCase()) {
    return `The method ${method} is not the method of the action ${action.name}, which covers ${covered}.`;
  }
  if (decodedPath === undefined) return undefined;
  if (!pathHasPrefix(decodedPath, action.path_prefix)) return `The path ${JSON.stringify(decodedPath)} is outside the action ${action.name}, which covers ${covered}.`;

  // An action for every method (`*`) called with an unknown method leaves the method open, so only its prefix can be checked.
  const effective = method ?? (action.method === '*' ? undefined : action.method);
  if (effective === undefined) return undefined;
  const mapped = matchAction(actions, effective, decodedPath);
  if (mapped === undefined || mapped.name === action.name || !isMoreSpecific(mapped, action)) return undefined;
  return `The gateway maps ${effective} ${decodedPath} to the action ${mapped.name}, not to ${action.name}.`;
}

/**
 * Tells whether `winner` beats `other` for every call both cover: a longer prefix, or the same
 * prefix with an exact method against `*`. Actions that tie on both (such as the `* /` actions
 * of a resource that only AuthZEN protects) cover the same calls, and either one describes them.
 */
function isMoreSpecific(winner: ResourceAction, other: ResourceAction): boolean {
  const byPrefix = prefixLength(winner.path_prefix) - prefixLength(other.path_prefix);
  if (byPrefix !== 0) return byPrefix > 0;
  return winner.method !== '*' && other.method === '*';
}
