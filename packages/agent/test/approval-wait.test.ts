import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { decodeJwt } from 'jose';

import {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalMismatchError,
  ApprovalRejectedError,
  ApprovalRequiredError,
  ApprovalTimeoutError,
  ForbiddenError,
  MandateAgent,
} from '../src/index.ts';
import type { PendingApproval } from '../src/index.ts';
import { createClient } from '../../server/src/agents/clients.ts';
import { decideApproval } from '../../server/src/approvals/service.ts';
import { issueAccessToken } from '../../server/src/oauth/access-token.ts';
import { createDelegation } from '../../server/src/oauth/delegation.ts';
import { startTestServer } from '../../server/test/harness.ts';
import type { TestServer } from '../../server/test/harness.ts';
import { createWorld, delegatedToken, startUpstream } from '../../server/test/gateway/world.ts';
import type { Upstream, World } from '../../server/test/gateway/world.ts';

const BODY = '{"subject":"Quarterly numbers","to":"bob@example.test"}';

/** One request the agent sent. */
interface SentRequest {
  method: string;
  path: string;
  approval: string | null;
  dpop: string | null;
  status: number;
}

function recordingFetch(sent: SentRequest[]): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init?.headers);
    const response = await fetch(input, init);
    sent.push({ method: init?.method ?? 'GET', path: url.pathname, approval: headers.get('mandate-approval'), dpop: headers.get('dpop'), status: response.status });
    return response;
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected the call to throw'),
    (error: unknown) => error,
  );
}

describe('callGatewayWithApproval against Mandate', () => {
  let server: TestServer;
  let upstream: Upstream;

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
  });
  after(async () => {
    await upstream.close();
    await server.stop();
  });

  function agentFor(world: World, sent: SentRequest[] = [], dpop = false): MandateAgent {
    return new MandateAgent({ issuer: server.issuer, clientId: world.agentId, clientSecret: world.agentSecret, dpop, fetch: recordingFetch(sent) });
  }

  /** Returns a callback that records the person's decision shortly after the agent starts waiting. */
  function decideSoon(world: World, decision: 'approved' | 'denied'): (approval: PendingApproval) => void {
    return (approval) => {
      setTimeout(() => void decideApproval(server.ctx, { id: approval.approvalId, userId: world.user.id, decision }), 250);
    };
  }

  function sendRequest(world: World, token: string, path = '/send/mail?to=bob', body = BODY) {
    return { url: `${world.resourceName}${path}`, method: 'POST', headers: { 'content-type': 'application/json' }, body, accessToken: token };
  }

  it('approved call is repeated once', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const sent: SentRequest[] = [];
    const agent = agentFor(world, sent);
    const pending: PendingApproval[] = [];
    const before = upstream.received.length;

    const response = await agent.callGatewayWithApproval(sendRequest(world, token), {
      pollIntervalMs: 100,
      onApprovalRequired: (approval) => {
        pending.push(approval);
        decideSoon(world, 'approved')(approval);
      },
    });

    assert.equal(response.status, 200);
    assert.equal(upstream.received.length, before + 1, 'the upstream got the call once');
    assert.equal(upstream.received.at(-1)?.body.toString('utf8'), BODY);
    assert.equal(pending.length, 1);
    const [approval] = pending as [PendingApproval];
    assert.match(approval.approvalId, /^apr_/);
    assert.equal(approval.approvalUri, `${server.issuer}/approvals/${approval.approvalId}`);
    assert.ok((approval.expiresIn ?? 0) > 0);

    const gatewayCalls = sent.filter((request) => request.path.startsWith('/gateway/'));
    assert.deepEqual(
      gatewayCalls.map((request) => [request.approval, request.status]),
      [
        [null, 403],
        [approval.approvalId, 200],
      ],
    );
    const polls = sent.filter((request) => request.path === `/approvals/${approval.approvalId}/status`);
    assert.ok(polls.length >= 1 && polls.every((poll) => poll.method === 'GET' && poll.status === 200), `polls: ${JSON.stringify(polls)}`);

    const replay = await rejection(agent.callGateway({ ...sendRequest(world, token), approvalId: approval.approvalId }));
    assert.ok(replay instanceof ApprovalRejectedError);
    assert.equal(replay.reason, 'used');
    assert.equal(replay.approvalId, approval.approvalId);
    assert.equal(replay.error, 'access_denied');
    assert.equal(upstream.received.length, before + 1, 'the replay did not reach the upstream');
  });

  it('denied approval throws ApprovalDeniedError', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const sent: SentRequest[] = [];
    const before = upstream.received.length;

    const error = await rejection(agentFor(world, sent).callGatewayWithApproval(sendRequest(world, token), { pollIntervalMs: 100, onApprovalRequired: decideSoon(world, 'denied') }));

    assert.ok(error instanceof ApprovalDeniedError);
    assert.ok(error instanceof ApprovalRejectedError);
    assert.ok(error instanceof ForbiddenError);
    assert.equal(error.reason, 'denied');
    assert.equal(error.name, 'ApprovalDeniedError');
    assert.match(error.approvalId ?? '', /^apr_/);
    assert.equal(upstream.received.length, before);
    assert.equal(sent.filter((request) => request.path.startsWith('/gateway/')).length, 1, 'a denied call is not sent again');
  });

  it('expired approval throws ApprovalExpiredError', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);

    const error = await rejection(
      agentFor(world).callGatewayWithApproval(sendRequest(world, token), {
        pollIntervalMs: 100,
        onApprovalRequired: async (approval) => {
          await server.ctx.db.updateTable('approvals').set({ expires_at: Math.floor(Date.now() / 1000) - 1 }).where('id', '=', approval.approvalId).execute();
        },
      }),
    );

    assert.ok(error instanceof ApprovalExpiredError);
    assert.equal(error.reason, 'expired');
  });

  it('timeout leaves the approval pending', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const started = Date.now();

    const error = await rejection(agentFor(world).callGatewayWithApproval(sendRequest(world, token), { timeoutMs: 400, pollIntervalMs: 100 }));

    assert.ok(error instanceof ApprovalTimeoutError);
    assert.match(error.approvalId, /^apr_/);
    assert.equal(error.approvalUri, `${server.issuer}/approvals/${error.approvalId}`);
    assert.ok(Date.now() - started < 3000, `waited ${Date.now() - started} ms`);
    const row = await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', error.approvalId).executeTakeFirstOrThrow();
    assert.equal(row.status, 'pending');
  });

  it('abort signal stops the wait', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const sent: SentRequest[] = [];
    const controller = new AbortController();
    const reason = new Error('the task was cancelled');

    const error = await rejection(
      agentFor(world, sent).callGatewayWithApproval(
        { ...sendRequest(world, token), signal: controller.signal },
        { pollIntervalMs: 100, onApprovalRequired: () => void setTimeout(() => controller.abort(reason), 250) },
      ),
    );

    assert.equal(error, reason, 'the promise rejects with the abort reason');
    const count = sent.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(sent.length, count, 'nothing is sent after the abort');
    assert.equal(sent.filter((request) => request.path.startsWith('/gateway/')).length, 1);
  });

  it('other arguments throw ApprovalMismatchError', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const agent = agentFor(world);
    const required = await rejection(agent.callGateway(sendRequest(world, token)));
    assert.ok(required instanceof ApprovalRequiredError);
    await decideApproval(server.ctx, { id: required.approvalId, userId: world.user.id, decision: 'approved' });

    const error = await rejection(agent.callGateway({ ...sendRequest(world, token, '/send/mail?to=bob', '{"subject":"Quarterly numbers","to":"eve@example.test"}'), approvalId: required.approvalId }));
    assert.ok(error instanceof ApprovalMismatchError);
    assert.equal(error.reason, 'mismatch');
    assert.equal(error.approvalId, required.approvalId);

    const exact = await agent.callGateway({ ...sendRequest(world, token), approvalId: required.approvalId });
    assert.equal(exact.status, 200, 'the mismatch did not use up the approval');
  });

  it('DPoP agent polls with bound proofs', async () => {
    const world = await createWorld(server, upstream.url);
    const sent: SentRequest[] = [];
    const agent = agentFor(world, sent, true);
    await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: ['send'], source: 'consent' });
    const subject = await issueAccessToken(server.ctx, { subject: world.user.id, clientId: world.applicationId, audience: world.identifier, scope: ['send'], lifetimeSeconds: 600 });
    const token = await agent.exchangeToken({ subjectToken: subject.token, resource: world.identifier, scope: 'send' });
    assert.equal(token.tokenType, 'DPoP');

    const response = await agent.callGatewayWithApproval(sendRequest(world, token.accessToken), { pollIntervalMs: 100, onApprovalRequired: decideSoon(world, 'approved') });

    assert.equal(response.status, 200);
    const polls = sent.filter((request) => request.path.endsWith('/status'));
    assert.ok(polls.length >= 1);
    for (const poll of polls) {
      assert.equal(poll.status, 200);
      const claims = decodeJwt(poll.dpop ?? '');
      assert.equal(claims.htm, 'GET');
      assert.equal(claims.htu, `${server.issuer}${poll.path}`);
      assert.equal(typeof claims.ath, 'string', 'the proof is bound to the access token (RFC 9449 §7.1)');
    }
  });

  it('status for another agent is not found', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const required = await rejection(agentFor(world).callGateway(sendRequest(world, token)));
    assert.ok(required instanceof ApprovalRequiredError);
    const approvalId = required.approvalId;

    const other = await createClient(server.ctx, { kind: 'agent', name: 'Other Agent' });
    await server.ctx.db.insertInto('client_roles').values({ client_id: other.client.client_id, role_id: world.agentRoleId }).execute();
    const otherWorld = { ...world, agentId: other.client.client_id, agentSecret: other.clientSecret ?? '' };
    const otherToken = await delegatedToken(server, otherWorld);

    const error = await rejection(agentFor(otherWorld).approvalStatus({ approvalId, accessToken: otherToken }));
    assert.ok(error instanceof ApprovalRejectedError);
    assert.equal(error.reason, 'not_found');

    const own = await agentFor(world).approvalStatus({ approvalId, accessToken: token });
    assert.equal(own.approvalId, approvalId);
    assert.equal(own.status, 'pending');
    assert.ok(own.expiresIn > 0);
  });

  it('streamed body is refused before sending', async () => {
    const world = await createWorld(server, upstream.url);
    const sent: SentRequest[] = [];
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(BODY));
        controller.close();
      },
    });

    await assert.rejects(agentFor(world, sent).callGatewayWithApproval({ ...sendRequest(world, 'unused'), body: stream }), TypeError);
    const form = new FormData();
    form.set('to', 'bob');
    await assert.rejects(agentFor(world, sent).callGatewayWithApproval({ ...sendRequest(world, 'unused'), body: form }), /FormData/);
    await assert.rejects(agentFor(world, sent).callGatewayWithApproval(sendRequest(world, 'unused'), { pollIntervalMs: 10 }), /pollIntervalMs/);
    assert.equal(sent.length, 0);
  });
});
