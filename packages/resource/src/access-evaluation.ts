import { randomUUID } from 'node:crypto';

import type { PdpCredentials } from './pdp-credentials.ts';
import { parseSecureUrl } from './secure-url.ts';

/** The AuthZEN subject type whose `id` is the agent's access token. */
export const SUBJECT_TYPE = 'mandate_access_token';
/** The AuthZEN resource type whose `id` is the resource identifier. */
export const RESOURCE_TYPE = 'mandate_resource';

/** Default path of the Access Evaluation API (AuthZEN Authorization API 1.0, "HTTPS JSON Binding"). */
const EVALUATION_PATH = '/access/v1/evaluation';
const DEFAULT_TIMEOUT_MS = 2000;
/** Largest decision accepted, in bytes. Mandate's decisions are a few hundred bytes. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface AccessEvaluationOptions {
  /** Mandate's issuer URL. The Access Evaluation API is at `<issuer>/access/v1/evaluation`. */
  issuer: string;
  /** This API's resource identifier: the audience of the agents' tokens. */
  audience: string;
  /** This server's own access token for the Access Evaluation API; see pdpClientCredentials. */
  credentials: PdpCredentials;
  /** Overrides the Access Evaluation API URL, for example the `access_evaluation_endpoint` of Mandate's PDP metadata. */
  evaluationEndpoint?: string;
  /** Milliseconds to wait for a decision, the credentials included. Defaults to 2000. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** One call to decide. */
export interface AccessEvaluationCall {
  /** The access token that the agent sent with the call. */
  token: string;
  /** The name of the resource action that the call performs, as registered in Mandate. */
  action: string;
  /** The call's arguments (an MCP tool call's arguments, or a JSON body's members), for policies to read. */
  arguments?: Record<string, unknown> | undefined;
  /** The HTTP method of the call. */
  method?: string | undefined;
  /** The request path, without its query. */
  path?: string | undefined;
}

/** Mandate's decision, or a deny when no decision could be obtained. */
export interface AuthorizationDecision {
  /** True only when Mandate allowed this call. */
  allowed: boolean;
  result: 'allow' | 'deny' | 'approval_required';
  /** The check that denied, from Mandate (`token_scope`, `policy`, ...) or `decision_unavailable`. */
  deniedBy?: string | undefined;
  /** A reason that may be shown to the agent. */
  reason: string;
  /** Mandate's decision context: roles, policies, person, agent, the approval request. Empty without a decision. */
  context: Record<string, unknown>;
  /** The reason no decision was obtained, for the server's log. Set only with `deniedBy: 'decision_unavailable'`. */
  error?: Error;
}

/**
 * Asks Mandate whether one call may proceed (AuthZEN Access Evaluation API).
 * Never throws: a network error, a timeout, a status other than 200, a body
 * that is not a decision, or missing credentials all return a deny with
 * `error` set, because the AuthZEN decision model is closed by default.
 */
export async function evaluate(options: AccessEvaluationOptions, call: AccessEvaluationCall): Promise<AuthorizationDecision> {
  try {
    const signal = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const endpoint = evaluationEndpointOf(options);
    const pepToken = await untilAborted(Promise.resolve(options.credentials()), signal);
    const decision = await requestDecision(options, endpoint, pepToken, call, signal);
    return decision;
  } catch (error) {
    return unavailable(error instanceof Error ? error : new Error(String(error)));
  }
}

/** Returns the Access Evaluation API URL; throws a TypeError for an unusable URL. */
export function evaluationEndpointOf(options: Pick<AccessEvaluationOptions, 'issuer' | 'evaluationEndpoint'>): string {
  if (options.evaluationEndpoint !== undefined) {
    return parseSecureUrl(options.evaluationEndpoint, 'evaluationEndpoint').href;
  }
  const issuer = parseSecureUrl(options.issuer, 'issuer').href.replace(/\/+$/, '');
  return `${issuer}${EVALUATION_PATH}`;
}

async function requestDecision(options: AccessEvaluationOptions, endpoint: string, pepToken: string, call: AccessEvaluationCall, signal: AbortSignal): Promise<AuthorizationDecision> {
  const context: Record<string, unknown> = {};
  if (call.arguments !== undefined) {
    context.arguments = call.arguments;
  }
  if (call.method !== undefined) {
    context.method = call.method;
  }
  if (call.path !== undefined) {
    context.path = call.path;
  }
  const body = JSON.stringify({
    subject: { type: SUBJECT_TYPE, id: call.token },
    resource: { type: RESOURCE_TYPE, id: options.audience },
    action: { name: call.action },
    context,
  });

  const requestId = randomUUID();
  const response = await (options.fetch ?? fetch)(endpoint, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${pepToken}`,
      'content-type': 'application/json',
      accept: 'application/json',
      'x-request-id': requestId,
    },
    body,
    redirect: 'error',
    signal,
  });

  if (response.status !== 200) {
    await response.body?.cancel();
    if (response.status === 401) {
      options.credentials.invalidate?.();
    }
    throw new Error(`Mandate's Access Evaluation API returned HTTP ${response.status}`);
  }
  // AuthZEN "Request Identification": the PDP echoes the identifier, so the decision belongs to this request.
  if (response.headers.get('x-request-id') !== requestId) {
    await response.body?.cancel();
    throw new Error('The decision does not carry the X-Request-ID of the request');
  }
  if (!/^application\/json(;|$)/i.test(response.headers.get('content-type') ?? '')) {
    await response.body?.cancel();
    throw new Error(`The decision has the content type ${response.headers.get('content-type') ?? '(none)'}, not application/json`);
  }

  const text = await response.text();
  if (Buffer.byteLength(text, 'utf8') > MAX_RESPONSE_BYTES) {
    throw new Error(`The decision is larger than ${MAX_RESPONSE_BYTES} bytes`);
  }
  return readDecision(JSON.parse(text));
}

/**
 * Reads an AuthZEN decision. Only `decision: true` allows, and only when the
 * context, if any, has the result `allow`, because a PEP may reject a decision
 * whose context it does not understand (AuthZEN "Decision").
 */
function readDecision(value: unknown): AuthorizationDecision {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('The decision is not a JSON object');
  }
  const { decision, context: rawContext } = value as Record<string, unknown>;
  if (typeof decision !== 'boolean') {
    throw new Error('The decision has no boolean "decision" member');
  }
  if (rawContext !== undefined && (typeof rawContext !== 'object' || rawContext === null || Array.isArray(rawContext))) {
    throw new Error('The decision\'s "context" is not a JSON object');
  }

  const context = (rawContext ?? {}) as Record<string, unknown>;
  const reason = typeof context.reason === 'string' ? context.reason : undefined;
  if (decision) {
    if (context.result !== undefined && context.result !== 'allow') {
      throw new Error(`The decision is true but its context has the result ${String(context.result)}`);
    }
    return { allowed: true, result: 'allow', reason: reason ?? 'Mandate allowed the call.', context };
  }

  const result = context.result === 'approval_required' ? 'approval_required' : 'deny';
  const deniedBy = typeof context.denied_by === 'string' ? context.denied_by : undefined;
  return { allowed: false, result, deniedBy, reason: reason ?? 'Mandate denied the call.', context };
}

function unavailable(error: Error): AuthorizationDecision {
  return {
    allowed: false,
    result: 'deny',
    deniedBy: 'decision_unavailable',
    reason: 'Mandate could not be asked whether this call is allowed, so it is denied.',
    context: {},
    error,
  };
}

/** Settles with `promise`, or rejects when `signal` aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('The decision timed out'));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
