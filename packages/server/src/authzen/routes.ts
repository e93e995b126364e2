import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import type { Client } from '../agents/clients.ts';
import { parseBindableJson } from '../approvals/arguments.ts';
import { InvalidRequest } from '../oauth/errors.ts';
import { evaluateAccess, type AuthzenDecision, type EvaluationCaller } from './evaluate.ts';
import { parseEvaluationRequest, parseEvaluationsRequest, type EvaluationsSemantic } from './evaluation-request.ts';
import { authenticatePep } from './pep-authentication.ts';

/** Default paths of the Access Evaluation and Access Evaluations APIs (AuthZEN Authorization API 1.0, "HTTPS JSON Binding"). */
export const EVALUATION_PATH = '/access/v1/evaluation';
export const EVALUATIONS_PATH = '/access/v1/evaluations';
export const PDP_METADATA_PATH = '/.well-known/authzen-configuration';

/** Largest request body, in bytes: the size of the largest gateway body, whose members a PEP may send as arguments. */
const MAX_REQUEST_BYTES = 1024 * 1024;

const peps = new WeakMap<FastifyRequest, Client>();

/**
 * Returns the Policy Decision Point metadata (AuthZEN Authorization API 1.0, "Policy Decision Point
 * Metadata"). Mandate's issuer is the PDP identifier.
 */
export function pdpMetadata(issuer: string): Record<string, string> {
  return {
    policy_decision_point: issuer,
    access_evaluation_endpoint: `${issuer}${EVALUATION_PATH}`,
    access_evaluations_endpoint: `${issuer}${EVALUATIONS_PATH}`,
  };
}

/**
 * Registers the OpenID AuthZEN Authorization API 1.0: the PDP metadata, and the Access
 * Evaluation and Access Evaluations APIs in a plugin of their own. There every request is
 * authenticated before its body is read (see pep-authentication.ts). The body must be an I-JSON
 * (RFC 7493) object of type `application/json`, as the section "JSON Payload Considerations"
 * recommends. A repeated member name or an inexact number is `invalid_request`, so Mandate never
 * decides on one reading of a body that the PEP read another way.
 */
export async function registerAuthzenRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.get(PDP_METADATA_PATH, async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(pdpMetadata(ctx.config.issuer)));

  await app.register(async (pdp) => {
    pdp.removeAllContentTypeParsers();
    pdp.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_REQUEST_BYTES }, (_request, body, done) => {
      const parsed = parseBindableJson(body as Buffer, 'application/json');
      if (parsed === undefined) {
        done(new InvalidRequest('The request body must be UTF-8 JSON without repeated member names, with numbers that a double holds exactly, nested at most 64 levels deep.'), undefined);
        return;
      }
      done(null, parsed.value);
    });

    pdp.addHook('onRequest', async (request, reply) => {
      // "Request Identification": the response carries the PEP's request identifier, errors included.
      const requestId = pepRequestId(request);
      if (requestId !== undefined) void reply.header('x-request-id', requestId);

      const path = request.url.split('?')[0] ?? '';
      peps.set(request, await authenticatePep(ctx, request, reply, path));
    });

    pdp.post(EVALUATION_PATH, async (request, reply) => {
      const evaluation = parseEvaluationRequest(request.body);
      const decision = await evaluateAccess(ctx, evaluation, callerOf(request));
      return reply.header('cache-control', 'no-store').send(decision);
    });

    pdp.post(EVALUATIONS_PATH, async (request, reply) => {
      const parsed = parseEvaluationsRequest(request.body);
      const caller = callerOf(request);
      if (parsed.kind === 'single') return reply.header('cache-control', 'no-store').send(await evaluateAccess(ctx, parsed.evaluation, caller));

      const evaluations = await evaluateBatch(ctx, parsed.evaluations, parsed.semantic, caller);
      return reply.header('cache-control', 'no-store').send({ evaluations });
    });
  });
}

/**
 * Evaluates a batch in order ("Evaluations semantics"). `deny_on_first_deny` stops after the first
 * `decision: false` and `permit_on_first_permit` after the first `decision: true`. The response
 * then lists the evaluations up to and including that one.
 */
async function evaluateBatch(ctx: ServerContext, evaluations: Parameters<typeof evaluateAccess>[1][], semantic: EvaluationsSemantic, caller: EvaluationCaller): Promise<AuthzenDecision[]> {
  const decisions: AuthzenDecision[] = [];
  for (const [index, evaluation] of evaluations.entries()) {
    const decision = await evaluateAccess(ctx, evaluation, { ...caller, batchIndex: index });
    decisions.push(decision);
    if (semantic === 'deny_on_first_deny' && !decision.decision) break;
    if (semantic === 'permit_on_first_permit' && decision.decision) break;
  }
  return decisions;
}

function callerOf(request: FastifyRequest): EvaluationCaller {
  const pep = peps.get(request);
  if (pep === undefined) throw new Error('The AuthZEN request was not authenticated.');
  return { pepClientId: pep.client_id, requestId: request.id, pepRequestId: pepRequestId(request) };
}

function pepRequestId(request: FastifyRequest): string | undefined {
  const value = request.headers['x-request-id'];
  if (typeof value !== 'string' || value === '') return undefined;
  return value;
}
