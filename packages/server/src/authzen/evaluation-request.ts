import { normalizeUpstreamPath, type UpstreamPath } from '../gateway/path.ts';
import { findCredentialParameter } from '../http/query-parameters.ts';
import { InvalidRequest } from '../oauth/errors.ts';
import { isWellFormedText } from '../http/well-formed-text.ts';

/**
 * The subject type Mandate evaluates: `id` is the access token that the agent presented to the
 * PEP. Mandate reads the person and the agent from the verified token and never from the PEP.
 */
export const SUBJECT_TYPE = 'mandate_access_token';

/** The resource type Mandate evaluates: `id` is the resource identifier, the token audience. */
export const RESOURCE_TYPE = 'mandate_resource';

/** Maximum number of evaluations in one Access Evaluations request. */
export const MAX_EVALUATIONS = 100;

/** The evaluation semantics of a batch (AuthZEN Authorization API 1.0, "Evaluations semantics"). */
export const EVALUATIONS_SEMANTICS = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;
export type EvaluationsSemantic = (typeof EVALUATIONS_SEMANTICS)[number];

const MAX_ID_LENGTH = 16 * 1024;
const MAX_RESOURCE_ID_LENGTH = 2000;
const MAX_ACTION_NAME_LENGTH = 200;
const MAX_PATH_LENGTH = 4096;
/** A method name as a request line carries it. Methods are case-sensitive (RFC 9110, section 9.1). */
const METHOD = /^[A-Z]{1,16}$/;

/** One access evaluation after validation: the only form the evaluation step accepts. */
export interface EvaluationRequest {
  /** The access token that the agent presented to the PEP (`subject.id`). */
  subjectToken: string;
  /** The resource identifier (`resource.id`). */
  resourceIdentifier: string;
  /** The action name (`action.name`). */
  actionName: string;
  /** `context.arguments`: the call's arguments, such as an MCP tool call's or a JSON body's members. */
  arguments?: Record<string, unknown> | undefined;
  /** `context.method`, upper case as sent. */
  method?: string | undefined;
  /**
   * `context.path` with its query, split, decoded and checked as the gateway does with the
   * request target after `/gateway/<resource>`.
   */
  target?: UpstreamPath | undefined;
}

/** A validated Access Evaluations request: one evaluation, or a batch with its semantic. */
export type EvaluationsRequest = { kind: 'single'; evaluation: EvaluationRequest } | { kind: 'batch'; evaluations: EvaluationRequest[]; semantic: EvaluationsSemantic };

type JsonObject = Record<string, unknown>;

const ENTITY_KEYS = ['subject', 'action', 'resource', 'context'] as const;

/**
 * Validates an Access Evaluation request (AuthZEN Authorization API 1.0, "The Access Evaluation
 * API Request"). A missing or malformed member is `invalid_request`, because the section "JSON
 * Serialization" requires Bad Request for an omitted required member. Unknown members are
 * ignored, as that section requires.
 */
export function parseEvaluationRequest(body: unknown): EvaluationRequest {
  return parseEvaluation(requireObject(body, 'The request body'), '');
}

/**
 * Validates an Access Evaluations request (AuthZEN Authorization API 1.0, "The Access Evaluations
 * API Request"). The top-level `subject`, `action`, `resource` and `context` are defaults that
 * the same member of an evaluation replaces whole ("Default values"). Without an `evaluations`
 * array, or with an empty one, the request is a single evaluation.
 */
export function parseEvaluationsRequest(body: unknown): EvaluationsRequest {
  const request = requireObject(body, 'The request body');
  const evaluations = request.evaluations;
  if (evaluations === undefined || (Array.isArray(evaluations) && evaluations.length === 0)) {
    return { kind: 'single', evaluation: parseEvaluation(request, '') };
  }

  if (!Array.isArray(evaluations)) throw new InvalidRequest('evaluations must be an array of evaluation objects.');
  if (evaluations.length > MAX_EVALUATIONS) throw new InvalidRequest(`evaluations has ${evaluations.length} entries; send at most ${MAX_EVALUATIONS} per request.`);

  const semantic = parseSemantic(request.options);
  const parsed = evaluations.map((entry, index) => {
    const label = `evaluations[${index}]`;
    const item = requireObject(entry, label);
    const merged: JsonObject = {};
    for (const key of ENTITY_KEYS) {
      const value = Object.hasOwn(item, key) ? item[key] : request[key];
      if (value !== undefined) merged[key] = value;
    }
    return parseEvaluation(merged, `${label}.`);
  });
  return { kind: 'batch', evaluations: parsed, semantic };
}

function parseSemantic(options: unknown): EvaluationsSemantic {
  if (options === undefined) return 'execute_all';
  const object = requireObject(options, 'options');
  const semantic = object.evaluations_semantic;
  if (semantic === undefined) return 'execute_all';
  if (typeof semantic !== 'string' || !(EVALUATIONS_SEMANTICS as readonly string[]).includes(semantic)) {
    throw new InvalidRequest(`options.evaluations_semantic must be one of ${EVALUATIONS_SEMANTICS.join(', ')}.`);
  }
  return semantic as EvaluationsSemantic;
}

function parseEvaluation(request: JsonObject, prefix: string): EvaluationRequest {
  const subject = requireObject(request.subject, `${prefix}subject`);
  const subjectType = requireString(subject.type, `${prefix}subject.type`, 200);
  if (subjectType !== SUBJECT_TYPE) throw new InvalidRequest(`${prefix}subject.type must be "${SUBJECT_TYPE}", with the agent's access token as subject.id.`);
  const subjectToken = requireString(subject.id, `${prefix}subject.id`, MAX_ID_LENGTH);
  optionalObject(subject.properties, `${prefix}subject.properties`);

  const resource = requireObject(request.resource, `${prefix}resource`);
  const resourceType = requireString(resource.type, `${prefix}resource.type`, 200);
  if (resourceType !== RESOURCE_TYPE) throw new InvalidRequest(`${prefix}resource.type must be "${RESOURCE_TYPE}", with the resource identifier as resource.id.`);
  const resourceIdentifier = requireString(resource.id, `${prefix}resource.id`, MAX_RESOURCE_ID_LENGTH);
  optionalObject(resource.properties, `${prefix}resource.properties`);

  const action = requireObject(request.action, `${prefix}action`);
  const actionName = requireString(action.name, `${prefix}action.name`, MAX_ACTION_NAME_LENGTH);
  optionalObject(action.properties, `${prefix}action.properties`);

  const context = optionalObject(request.context, `${prefix}context`) ?? {};
  const callArguments = optionalObject(context.arguments, `${prefix}context.arguments`);
  const method = context.method === undefined ? undefined : parseMethod(context.method, `${prefix}context.method`);
  const target = context.path === undefined ? undefined : parseTarget(context.path, `${prefix}context.path`);
  // Policies read `context.query`, but Mandate takes it from `context.path` as the gateway takes it from the request target.
  if (context.query !== undefined) throw new InvalidRequest(`${prefix}context.query is not accepted: send the query in ${prefix}context.path, after "?", as in /payments/42?dry_run=1.`);

  return { subjectToken, resourceIdentifier, actionName, arguments: callArguments, method, target };
}

/**
 * Checks `context.method`. HTTP methods are case-sensitive (RFC 9110, section 9.1), and Node's
 * HTTP parser rejects a request line with `get` or `Post` before the gateway receives it. A method
 * that is not upper case is therefore rejected here too, not upper-cased, so Cedar never
 * decides on a method that no gateway call could carry.
 */
function parseMethod(value: unknown, label: string): string {
  const method = requireString(value, label, 16);
  if (METHOD.test(method)) return method;
  if (METHOD.test(method.toUpperCase())) {
    throw new InvalidRequest(`${label} ${JSON.stringify(method)} is not upper case. HTTP methods are case-sensitive, so send the method exactly as the request line carried it, such as ${method.toUpperCase()}.`);
  }
  throw new InvalidRequest(`${label} must be an HTTP method name of upper-case letters, such as POST.`);
}

/**
 * Checks `context.path`, the request path relative to the resource with its query, and returns
 * it split and decoded as the gateway splits and decodes the request target after
 * `/gateway/<resource>`, so Cedar reads the same `context.path` and `context.query` from both.
 * Every target the gateway rejects is rejected here with the gateway's reason: a fragment, dot
 * segments, empty segments, encoded slashes or backslashes, control characters, malformed
 * percent-encoding and credentials in the query.
 */
function parseTarget(value: unknown, label: string): UpstreamPath {
  const path = requireString(value, label, MAX_PATH_LENGTH);
  if (!path.startsWith('/')) throw new InvalidRequest(`${label} must start with /: send the request path relative to the resource, such as /payments/42.`);
  if (path.includes('#')) throw new InvalidRequest(`${label} must not contain a fragment.`);

  const target = normalizedTarget(path, label);
  const credential = findCredentialParameter(target.query);
  if (credential !== undefined) throw new InvalidRequest(`${label} has the credential parameter ${credential} in its query. Remove it: Mandate does not record credentials.`);
  return target;
}

function normalizedTarget(path: string, label: string): UpstreamPath {
  try {
    return normalizeUpstreamPath(path);
  } catch (error) {
    if (!(error instanceof InvalidRequest)) throw error;
    throw new InvalidRequest(`${label} is invalid because the gateway rejects such a path: ${error.message}`);
  }
}

function requireObject(value: unknown, label: string): JsonObject {
  if (value === undefined) throw new InvalidRequest(`${label} is missing.`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidRequest(`${label} must be a JSON object.`);
  return value as JsonObject;
}

function optionalObject(value: unknown, label: string): JsonObject | undefined {
  return value === undefined ? undefined : requireObject(value, label);
}

function requireString(value: unknown, label: string, maxLength: number): string {
  if (value === undefined) throw new InvalidRequest(`${label} is missing.`);
  if (typeof value !== 'string' || value === '') throw new InvalidRequest(`${label} must be a non-empty string.`);
  if (value.length > maxLength) throw new InvalidRequest(`${label} is longer than ${maxLength} characters.`);
  if (!isWellFormedText(value)) throw new InvalidRequest(`${label} contains a lone UTF-16 surrogate (such as \\ud800), which is not text. Send valid Unicode.`);
  return value;
}
