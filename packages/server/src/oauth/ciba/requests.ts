import { sql } from 'kysely';
import type { ServerContext } from '../../context.ts';
import type { Db } from '../../store/db.ts';
import { newId, newSecret, nowSeconds, sha256Hex } from '../../store/ids.ts';
import type { CibaRequestTable } from '../../store/schema.ts';
import { listPendingRequests, recordDecision, type DecisionFailure } from '../../approvals/decision.ts';
import { deleteExpiredCibaRequests } from '../../approvals/expired-requests.ts';
import { createDelegation } from '../delegation.ts';
import { OIDC_SCOPES } from '../scope.ts';
import { canonicalDetails, type MandateActionDetail } from './authorization-details.ts';

export type CibaRequest = CibaRequestTable;

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** CIBA Core 1.0 §11: each `slow_down` lengthens the polling interval by this many seconds. */
export const SLOW_DOWN_INCREMENT_SECONDS = 5;

/** A backchannel authentication request that passed every check, ready to be stored. */
export interface NewCibaRequest {
  clientId: string;
  userId: string;
  resourceId: string;
  /** The scope to issue: OpenID Connect scopes, the granted actions and the detail's action. */
  scope: string[];
  authorizationDetails: MandateActionDetail[] | undefined;
  bindingMessage: string | undefined;
  deliveryMode: 'poll' | 'ping';
  /** Ping mode only: the bearer token Mandate presents at the agent's notification endpoint. */
  clientNotificationToken: string | undefined;
  expiresIn: number;
  intervalSeconds: number;
}

/** The secrets that a ping notification needs; stored sealed, never in the clear. */
interface PingSecrets {
  auth_req_id: string;
  client_notification_token: string;
}

/**
 * Stores a new request with a fresh `auth_req_id` of 256 random bits (CIBA Core 1.0 §7.3 requires
 * at least 128), of which only the SHA-256 is kept. `onCreated` runs in the same transaction
 * to append the audit entry; when it throws, nothing is stored. Storing one also deletes the
 * requests past their retention (see approvals/expired-requests.ts).
 */
export async function createCibaRequest(ctx: Ctx & Pick<ServerContext, 'envelope'>, input: NewCibaRequest, onCreated: (request: CibaRequest, trx: Db) => Promise<void>): Promise<{ authReqId: string; request: CibaRequest }> {
  const authReqId = newSecret();
  const id = newId('cib');
  const now = nowSeconds();
  const pingSecrets: PingSecrets | undefined = input.clientNotificationToken === undefined ? undefined : { auth_req_id: authReqId, client_notification_token: input.clientNotificationToken };

  const request: CibaRequest = {
    id,
    tenant_id: ctx.tenantId,
    auth_req_id_hash: sha256Hex(authReqId),
    client_id: input.clientId,
    user_id: input.userId,
    resource_id: input.resourceId,
    scope: input.scope.join(' '),
    authorization_details: input.authorizationDetails === undefined ? null : canonicalDetails(input.authorizationDetails),
    binding_message: input.bindingMessage ?? null,
    delivery_mode: input.deliveryMode,
    ping_secrets: pingSecrets === undefined ? null : await ctx.envelope.seal(JSON.stringify(pingSecrets), pingContext(id)),
    status: 'pending',
    created_at: now,
    expires_at: now + input.expiresIn,
    interval_seconds: input.intervalSeconds,
    polled_at_ms: null,
    decided_at: null,
    auth_time: null,
    delegation_id: null,
    issued_at: null,
    approval_used_at: null,
  };

  await ctx.db.transaction().execute(async (trx) => {
    await deleteExpiredCibaRequests(trx, ctx.tenantId, now);
    await trx.insertInto('ciba_requests').values(request).execute();
    await onCreated(request, trx);
  });
  return { authReqId, request };
}

export async function findCibaRequest(ctx: Ctx, id: string): Promise<CibaRequest | undefined> {
  return ctx.db.selectFrom('ciba_requests').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
}

export async function findCibaRequestByAuthReqId(ctx: Ctx, authReqId: string): Promise<CibaRequest | undefined> {
  return ctx.db.selectFrom('ciba_requests').selectAll().where('tenant_id', '=', ctx.tenantId).where('auth_req_id_hash', '=', sha256Hex(authReqId)).executeTakeFirst();
}

/** Lists the person's pending, unexpired requests, newest first. */
export async function listPendingCibaRequests(ctx: Ctx, userId: string, limit: number): Promise<CibaRequest[]> {
  return listPendingRequests(ctx, 'ciba_requests', userId, limit);
}

/** Reads the approved details of a stored request; undefined when it asked for scopes only. */
export function storedDetails(request: CibaRequest): MandateActionDetail[] | undefined {
  return request.authorization_details === null ? undefined : (JSON.parse(request.authorization_details) as MandateActionDetail[]);
}

/** Returns the resource actions of a request's scope, without the OpenID Connect scopes. */
export function requestedActions(request: CibaRequest): string[] {
  return request.scope.split(' ').filter((scope) => scope !== '' && !OIDC_SCOPES.has(scope));
}

/**
 * Records the person's decision on their own pending, unexpired request. The conditional update
 * lets only one of two concurrent decisions apply. Approving also records the delegation that the
 * access token will name: the person's grant of exactly the requested actions to this agent.
 * The `ciba.decided` audit entry commits in the same transaction.
 */
export async function decideCibaRequest(
  ctx: Ctx & Pick<ServerContext, 'audit'>,
  input: { id: string; userId: string; decision: 'approved' | 'denied'; authTime: number; requestId?: string },
): Promise<{ ok: true; request: CibaRequest } | { ok: false; reason: DecisionFailure }> {
  const result = await recordDecision(ctx, 'ciba_requests', input, async (trx) => {
    let request = await trx.selectFrom('ciba_requests').selectAll().where('id', '=', input.id).executeTakeFirstOrThrow();
    if (input.decision === 'approved') {
      const delegation = await createDelegation({ db: trx, tenantId: ctx.tenantId }, { userId: request.user_id, clientId: request.client_id, resourceId: request.resource_id, scope: requestedActions(request), source: 'ciba' });
      await trx.updateTable('ciba_requests').set({ auth_time: input.authTime, delegation_id: delegation.id }).where('id', '=', request.id).execute();
      request = { ...request, auth_time: input.authTime, delegation_id: delegation.id };
    }

    await ctx.audit(
      {
        event: 'ciba.decided',
        user: request.user_id,
        agent: request.client_id,
        target: { ciba_request_id: request.id, resource_id: request.resource_id, scope: request.scope },
        outcome: { decision: input.decision },
        reason: { delegation_id: request.delegation_id, auth_time: input.authTime, ...(request.authorization_details === null ? {} : { authorization_details_sha256: sha256Hex(request.authorization_details) }) },
        request_id: input.requestId,
      },
      trx,
    );
    return request;
  });
  return result.ok ? { ok: true, request: result.row } : result;
}

/**
 * Records a token request for a pending request and returns false when it came sooner than
 * `interval_seconds` after the previous one. A request that comes too soon still counts as the
 * latest, and lengthens the interval by SLOW_DOWN_INCREMENT_SECONDS (CIBA Core 1.0 §11). The
 * first token request is never too soon. Both updates are conditional, so two concurrent polls
 * cannot both pass.
 */
export async function recordPoll(ctx: Ctx, request: CibaRequest, nowMs: number): Promise<{ inTime: boolean; intervalSeconds: number }> {
  const inTime = await ctx.db
    .updateTable('ciba_requests')
    .set({ polled_at_ms: nowMs })
    .where('id', '=', request.id)
    .where((eb) => eb.or([eb('polled_at_ms', 'is', null), eb('polled_at_ms', '<=', sql<number>`CAST(${nowMs} AS bigint) - interval_seconds * 1000`)]))
    .executeTakeFirst();
  if (Number(inTime.numUpdatedRows) === 1) return { inTime: true, intervalSeconds: request.interval_seconds };

  const slowed = await ctx.db
    .updateTable('ciba_requests')
    .set((eb) => ({ polled_at_ms: nowMs, interval_seconds: eb('interval_seconds', '+', SLOW_DOWN_INCREMENT_SECONDS) }))
    .where('id', '=', request.id)
    .returning('interval_seconds')
    .executeTakeFirst();
  return { inTime: false, intervalSeconds: Number(slowed?.interval_seconds ?? request.interval_seconds + SLOW_DOWN_INCREMENT_SECONDS) };
}

/** Spends an approved, unexpired request for its one token; of two concurrent redemptions exactly one succeeds. */
export async function markIssued(ctx: Ctx, id: string): Promise<boolean> {
  const now = nowSeconds();
  const result = await ctx.db.updateTable('ciba_requests').set({ status: 'issued', issued_at: now }).where('id', '=', id).where('status', '=', 'approved').where('expires_at', '>', now).executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Counts the person's approval, once, for a gateway call under the delegation of an issued
 * request. Returns the request id when this call used it, or undefined when there is no such
 * request or an earlier call already used it.
 */
export async function useAdvanceApproval(ctx: Ctx, delegationId: string): Promise<string | undefined> {
  const request = await ctx.db.selectFrom('ciba_requests').select(['id']).where('tenant_id', '=', ctx.tenantId).where('delegation_id', '=', delegationId).where('status', '=', 'issued').executeTakeFirst();
  if (request === undefined) return undefined;

  const used = await ctx.db.updateTable('ciba_requests').set({ approval_used_at: nowSeconds() }).where('id', '=', request.id).where('approval_used_at', 'is', null).executeTakeFirst();
  return Number(used.numUpdatedRows) === 1 ? request.id : undefined;
}

/**
 * Returns the id of the issued request under this delegation when its advance approval is still
 * unused, without using it. An AuthZEN evaluation reports with it what a gateway call would get.
 */
export async function findUnusedAdvanceApproval(ctx: Ctx, delegationId: string): Promise<string | undefined> {
  const request = await ctx.db
    .selectFrom('ciba_requests')
    .select(['id'])
    .where('tenant_id', '=', ctx.tenantId)
    .where('delegation_id', '=', delegationId)
    .where('status', '=', 'issued')
    .where('approval_used_at', 'is', null)
    .executeTakeFirst();
  return request?.id;
}

/** Opens the sealed ping secrets of a request; undefined in poll mode, after delivery, or when they cannot be decrypted. */
export async function openPingSecrets(ctx: Pick<ServerContext, 'envelope'>, request: CibaRequest): Promise<PingSecrets | undefined> {
  if (request.ping_secrets === null) return undefined;
  try {
    return JSON.parse(await ctx.envelope.open(request.ping_secrets, pingContext(request.id))) as PingSecrets;
  } catch {
    return undefined;
  }
}

/** Erases the ping secrets once the notification is delivered, so the database no longer contains them. */
export async function forgetPingSecrets(ctx: Ctx, id: string): Promise<void> {
  await ctx.db.updateTable('ciba_requests').set({ ping_secrets: null }).where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
}

function pingContext(id: string): string {
  return `ciba:${id}`;
}
