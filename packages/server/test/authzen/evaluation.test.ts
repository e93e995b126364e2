import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, clientCredentialsToken, type AdminApi } from '../admin/admin-client.ts';
import { delegatedToken } from '../gateway/world.ts';
import { setPolicy } from '../policy/policy-world.ts';
import { basicAuthorization, createProof, generateDpopKey } from '../dpop/proofs.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { tokenDigest } from '../../src/audit/log.ts';
import type { AuditEvent } from '../../src/audit/entry.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { callPdp, createAuthzenWorld, evaluationOf, pepToken, SUBJECT_TYPE, type AuthzenWorld } from './authzen-world.ts';

const EVALUATION = '/access/v1/evaluation';

let server: TestServer;
let api: AdminApi;

before(async () => {
  server = await startTestServer();
  api = await adminApi(server);
});

after(async () => {
  await server.stop();
});

async function auditMark(): Promise<number> {
  const row = await server.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
  return Number(row?.seq ?? 0);
}

async function evaluationsSince(mark: number): Promise<AuditEvent[]> {
  const records = await readAudit(server.ctx.db, { afterSeq: mark, limit: 1000 });
  return records.map((record) => record.event).filter((entry) => entry.event === 'authzen.evaluation');
}

function contextOf(response: { json: Record<string, unknown> }): Record<string, unknown> {
  const context = response.json.context;
  assert.equal(typeof context, 'object', 'the decision carries a context');
  return context as Record<string, unknown>;
}

async function evaluate(pep: string, body: unknown): Promise<{ status: number; decision: unknown; context: Record<string, unknown> }> {
  const response = await callPdp(server, EVALUATION, body, { token: pep });
  assert.equal(response.status, 200, JSON.stringify(response.json));
  return { status: response.status, decision: response.json.decision, context: contextOf(response) };
}

async function revokeWithAgent(world: AuthzenWorld, token: string): Promise<void> {
  const response = await fetch(`${server.issuer}/revoke`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${world.agentId}:${world.agentSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  assert.equal(response.status, 200);
}

test('PDP metadata lists both endpoints', async () => {
  const response = await fetch(`${server.issuer}/.well-known/authzen-configuration`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  // AuthZEN "Policy Decision Point Metadata": the identifier is the PDP's own URL.
  assert.deepEqual(await response.json(), {
    policy_decision_point: server.issuer,
    access_evaluation_endpoint: `${server.issuer}/access/v1/evaluation`,
    access_evaluations_endpoint: `${server.issuer}/access/v1/evaluations`,
  });
});

test('PEP token only for admins and applications', async () => {
  const world = await createAuthzenWorld(api);
  const audience = `${server.issuer}/access`;

  const application = await clientCredentialsToken(server, world.pepId, world.pepSecret, audience);
  assert.equal(application.status, 200);
  assert.equal(application.body.scope, 'mandate:evaluate');

  // RFC 6749 §5.2: the agent is authenticated but may not use this grant for this audience.
  const agent = await clientCredentialsToken(server, world.agentId, world.agentSecret, audience);
  assert.equal(agent.status, 400);
  assert.equal(agent.body.error, 'unauthorized_client');

  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${world.pepId}:${world.pepSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: audience, scope: 'mandate:evaluate mandate:admin' }),
  });
  assert.equal(response.status, 400);
  assert.equal(((await response.json()) as { error: string }).error, 'invalid_scope');
});

test('unauthenticated PEP gets 401', async () => {
  const world = await createAuthzenWorld(api);
  const agentToken = await delegatedToken(server, world, 'pay');
  const body = evaluationOf(world, agentToken, 'pay');
  const mark = await auditMark();

  // RFC 6750 §3.1 and AuthZEN "Sender Authentication Failure": 401 with a challenge.
  const missing = await callPdp(server, EVALUATION, body, { headers: { 'x-request-id': 'pep-unauthenticated' } });
  assert.equal(missing.status, 401);
  assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer realm="mandate"/);
  assert.equal(missing.headers.get('x-request-id'), 'pep-unauthenticated', 'errors echo the request identifier too');

  const garbage = await callPdp(server, EVALUATION, body, { token: 'not-a-token' });
  assert.equal(garbage.status, 401);
  assert.equal(garbage.json.error, 'invalid_token');

  // The agent's own token for the resource is not a PEP token: wrong audience.
  const agentAsPep = await callPdp(server, EVALUATION, body, { token: agentToken });
  assert.equal(agentAsPep.status, 401);
  assert.equal(agentAsPep.json.error, 'invalid_token');

  const admin = await callPdp(server, EVALUATION, body, { token: api.token });
  assert.equal(admin.status, 401, 'an admin API token is for another audience');

  const pep = await pepToken(server, world);
  assert.equal((await api.call('POST', `/applications/${world.pepId}/disable`)).status, 200);
  const disabled = await callPdp(server, EVALUATION, body, { token: pep });
  assert.equal(disabled.status, 401, 'a disabled PEP client is rejected');

  const bodyless = await fetch(`${server.issuer}${EVALUATION}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"subject":' });
  assert.equal(bodyless.status, 401, 'authentication comes before the body is parsed');

  assert.deepEqual(await evaluationsSince(mark), [], 'nothing was evaluated');
});

test('allow and deny by intersection', async () => {
  const world = await createAuthzenWorld(api);
  const version = await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const agentToken = await delegatedToken(server, world, 'pay mail.read');

  const allowed = await evaluate(pep, evaluationOf(world, agentToken, 'mail.read'));
  assert.equal(allowed.decision, true);
  assert.equal(allowed.context.result, 'allow');
  assert.equal(allowed.context.person, world.user.id, 'the person comes from the token');
  assert.equal(allowed.context.agent, world.agentId);
  assert.deepEqual(allowed.context.user_roles, [world.userRole]);
  assert.deepEqual(allowed.context.agent_roles, [world.agentRole]);
  assert.equal(allowed.context.policy_version, version);

  const outOfScope = await evaluate(pep, evaluationOf(world, agentToken, 'mail.send'));
  assert.equal(outOfScope.decision, false);
  assert.equal(outOfScope.context.result, 'deny');
  assert.equal(outOfScope.context.denied_by, 'token_scope');

  assert.equal((await api.call('DELETE', `/users/${world.user.id}/roles/${world.userRole}`)).status, 200);
  const demoted = await evaluate(pep, evaluationOf(world, agentToken, 'mail.read'));
  assert.equal(demoted.decision, false);
  assert.equal(demoted.context.denied_by, 'user_roles', 'a removed role applies to the next evaluation');

  assert.equal((await api.call('POST', `/users/${world.user.id}/roles`, { role: world.userRole })).status, 200);
  assert.equal((await api.call('DELETE', `/agents/${world.agentId}/roles/${world.agentRole}`)).status, 200);
  const agentDemoted = await evaluate(pep, evaluationOf(world, agentToken, 'mail.read'));
  assert.equal(agentDemoted.decision, false);
  assert.equal(agentDemoted.context.denied_by, 'agent_roles');
});

test('PEP cannot name the person', async () => {
  const world = await createAuthzenWorld(api);
  const other = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const agentToken = await delegatedToken(server, world, 'mail.read');

  const body = evaluationOf(world, agentToken, 'mail.read');
  (body.subject as Record<string, unknown>).properties = { person: other.user.id, agent: other.agentId };
  const response = await evaluate(pep, body);
  assert.equal(response.decision, true);
  assert.equal(response.context.person, world.user.id, 'subject.properties are ignored');
  assert.equal(response.context.agent, world.agentId);

  const wrongResource = await evaluate(pep, { ...evaluationOf(other, agentToken, 'mail.read') });
  assert.equal(wrongResource.decision, false, 'a token for another resource is rejected');
  assert.equal(wrongResource.context.denied_by, 'token_invalid');
  assert.equal(wrongResource.context.person, undefined);
});

test('Cedar condition on arguments', async () => {
  const world = await createAuthzenWorld(api);
  const pep = await pepToken(server, world);
  const agentToken = await delegatedToken(server, world, 'pay');
  const version = await setPolicy(
    api,
    `@id("no-large-payments")
forbid(principal, action == Action::"${world.resourceName}/pay", resource)
when { context.arguments has amount && context.arguments.amount > 1000 };`,
  );

  const small = await evaluate(pep, evaluationOf(world, agentToken, 'pay', { arguments: { amount: 10, currency: 'EUR' }, method: 'POST', path: '/payments' }));
  assert.equal(small.decision, true);
  assert.equal(small.context.policy_version, version);

  const mark = await auditMark();
  const large = await evaluate(pep, evaluationOf(world, agentToken, 'pay', { arguments: { amount: 5000, currency: 'EUR' } }));
  assert.equal(large.decision, false);
  assert.equal(large.context.denied_by, 'policy');
  assert.deepEqual(large.context.policies, ['no-large-payments']);
  const entry = (await evaluationsSince(mark))[0];
  const audited = entry?.reason?.policy_decision as Record<string, unknown>;
  assert.deepEqual((audited.inputs as Record<string, unknown>).arguments, { amount: 5000, currency: 'EUR' });

  // A declared Long sent as a string would slip past the condition if it were dropped.
  const typed = await evaluate(pep, evaluationOf(world, agentToken, 'pay', { arguments: { amount: '5000' } }));
  assert.equal(typed.decision, false);
  assert.equal(typed.context.denied_by, 'argument_type');
  assert.match(String((typed.context.errors as string[])[0]), /argument amount must be a JSON integer/);

  // Cedar's JSON reader rejects a lone surrogate, which showed as a policy error without the argument's name.
  const surrogate = await evaluate(pep, evaluationOf(world, agentToken, 'pay', { arguments: { amount: 5, currency: 'EUR\ud800' } }));
  assert.equal(surrogate.decision, false);
  assert.equal(surrogate.context.denied_by, 'argument_type');
  assert.match(String((surrogate.context.errors as string[])[0]), /^argument currency contains a lone UTF-16 surrogate/);

  await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/pay", resource) when { context has path && context.path like "/admin*" };`);
  const path = await evaluate(pep, evaluationOf(world, agentToken, 'pay', { arguments: { amount: 1 }, path: '/admin/payments' }));
  assert.equal(path.decision, false, 'context.path reaches Cedar');
  assert.equal(path.context.denied_by, 'policy');
});

test('approval required is a deny', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const agentToken = await delegatedToken(server, world, 'refund pay');

  const refund = await evaluate(pep, evaluationOf(world, agentToken, 'refund', { arguments: { amount: 20 } }));
  assert.equal(refund.decision, false);
  assert.equal(refund.context.result, 'approval_required');
  assert.deepEqual(refund.context.approval_required_by, ['requires_approval']);
  assert.deepEqual(refund.context.approval, {
    authorization_details: [{ type: 'mandate_action', resource: world.identifier, action: 'refund', arguments: { amount: 20 } }],
    backchannel_authentication_endpoint: `${server.issuer}/bc-authorize`,
  });

  await setPolicy(api, `@id("big-payments") @approval forbid(principal, action == Action::"${world.resourceName}/pay", resource) when { context.arguments has amount && context.arguments.amount > 100 };`);
  const big = await evaluate(pep, evaluationOf(world, agentToken, 'pay', { arguments: { amount: 500 } }));
  assert.equal(big.decision, false);
  assert.equal(big.context.result, 'approval_required');
  assert.deepEqual(big.context.approval_required_by, ['big-payments']);
  assert.equal((await evaluate(pep, evaluationOf(world, agentToken, 'pay', { arguments: { amount: 50 } }))).decision, true);
});

test('revoked token and delegation deny', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);

  const token = await delegatedToken(server, world, 'mail.read');
  assert.equal((await evaluate(pep, evaluationOf(world, token, 'mail.read'))).decision, true);
  await revokeWithAgent(world, token);
  const revoked = await evaluate(pep, evaluationOf(world, token, 'mail.read'));
  assert.equal(revoked.decision, false, 'RFC 7009: a revoked token is not accepted');
  assert.equal(revoked.context.denied_by, 'token_invalid');
  assert.equal(revoked.context.reason, 'The access token has been revoked.');

  const second = await delegatedToken(server, world, 'mail.read');
  assert.equal((await api.call('POST', `/agents/${world.agentId}/revoke-delegations`, {})).status, 200);
  const delegationRevoked = await evaluate(pep, evaluationOf(world, second, 'mail.read'));
  assert.equal(delegationRevoked.decision, false);
  assert.equal(delegationRevoked.context.denied_by, 'token_invalid');
  assert.equal(delegationRevoked.context.reason, 'The delegation behind this access token was revoked.');

  const forged = `${second.slice(0, -4)}AAAA`;
  const invalid = await evaluate(pep, evaluationOf(world, forged, 'mail.read'));
  assert.equal(invalid.decision, false, 'a token with a broken signature is rejected');
  assert.equal(invalid.context.denied_by, 'token_invalid');
});

test('agent own token by agent roles', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const issued = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${world.agentId}:${world.agentSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: world.identifier, scope: 'mail.read' }),
  });
  const own = ((await issued.json()) as { access_token: string }).access_token;

  const allowed = await evaluate(pep, evaluationOf(world, own, 'mail.read'));
  assert.equal(allowed.decision, true);
  assert.equal(allowed.context.person, undefined, 'no person is involved');
  assert.equal(allowed.context.agent, world.agentId);

  assert.equal((await api.call('POST', `/agents/${world.agentId}/disable`)).status, 200);
  const disabled = await evaluate(pep, evaluationOf(world, own, 'mail.read'));
  assert.equal(disabled.decision, false);
  assert.equal(disabled.context.denied_by, 'token_invalid');
});

test('unknown resource and action deny', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const token = await delegatedToken(server, world, 'mail.read');

  const resource = await evaluate(pep, evaluationOf({ identifier: 'https://unknown.example.test/' }, token, 'mail.read'));
  assert.equal(resource.decision, false);
  assert.equal(resource.context.denied_by, 'resource_unknown');

  const action = await evaluate(pep, evaluationOf(world, token, 'mail.delete'));
  assert.equal(action.decision, false);
  assert.equal(action.context.denied_by, 'action_unknown');
});

test('bad requests get 400 invalid_request', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const token = await delegatedToken(server, world, 'mail.read');
  const valid = evaluationOf(world, token, 'mail.read');
  const mark = await auditMark();

  const cases: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{"subject":', /must be UTF-8 JSON/],
    ['an array', '[]', /The request body must be a JSON object/],
    ['repeated member', `{"subject":{"type":"${SUBJECT_TYPE}","id":"x"},"subject":{"type":"${SUBJECT_TYPE}","id":"y"}}`, /repeated member names/],
    ['inexact number', `{"context":{"arguments":{"amount":9007199254740993}}}`, /numbers that a double holds exactly/],
    ['no subject', { ...valid, subject: undefined }, /^subject is missing\.$/],
    ['subject type', { ...valid, subject: { type: 'user', id: 'alice' } }, /subject\.type must be "mandate_access_token"/],
    ['empty subject id', { ...valid, subject: { type: SUBJECT_TYPE, id: '' } }, /subject\.id must be a non-empty string/],
    ['resource type', { ...valid, resource: { type: 'document', id: world.identifier } }, /resource\.type must be "mandate_resource"/],
    ['no action name', { ...valid, action: {} }, /^action\.name is missing\.$/],
    ['context array', { ...valid, context: [] }, /^context must be a JSON object\.$/],
    ['arguments array', { ...valid, context: { arguments: [1] } }, /context\.arguments must be a JSON object/],
    ['method', { ...valid, context: { method: 'GET /' } }, /context\.method must be an HTTP method name/],
    ['path', { ...valid, context: { path: 'payments?x=1' } }, /context\.path must start with \//],
    ['lone surrogate in path', { ...valid, context: { path: '/payments/\ud800' } }, /^context\.path contains a lone UTF-16 surrogate/],
  ];
  for (const [label, body, description] of cases) {
    const response = await callPdp(server, EVALUATION, body, { token: pep });
    assert.equal(response.status, 400, label);
    assert.equal(response.json.error, 'invalid_request', label);
    assert.match(String(response.json.error_description), description, label);
  }

  const text = await fetch(`${server.issuer}${EVALUATION}`, { method: 'POST', headers: { authorization: `Bearer ${pep}`, 'content-type': 'text/plain' }, body: JSON.stringify(valid) });
  assert.equal(text.status, 415, 'AuthZEN "HTTPS JSON Binding": the body must be application/json');
  assert.equal(((await text.json()) as { error: string }).error, 'invalid_request');

  const empty = await fetch(`${server.issuer}${EVALUATION}`, { method: 'POST', headers: { authorization: `Bearer ${pep}`, 'content-type': 'application/json' } });
  assert.equal(empty.status, 400, 'an empty body is a bad request');
  assert.equal(((await empty.json()) as { error: string }).error, 'invalid_request');

  const charset = await fetch(`${server.issuer}${EVALUATION}`, { method: 'POST', headers: { authorization: `Bearer ${pep}`, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(valid) });
  assert.equal(charset.status, 200, 'a charset parameter is accepted');

  const unknownMembers = await evaluate(pep, { ...valid, extra: 1, action: { name: 'mail.read', future: true } });
  assert.equal(unknownMembers.decision, true, 'unknown members are ignored');
  assert.equal((await evaluationsSince(mark)).length, 2, 'only the valid requests were evaluated');
});

test('audit entry has digest, never the token', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const token = await delegatedToken(server, world, 'mail.read');
  const mark = await auditMark();

  const response = await callPdp(server, EVALUATION, evaluationOf(world, token, 'mail.read', { arguments: { folder: 'inbox' } }), { token: pep, headers: { 'x-request-id': 'pep-req-42' } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-request-id'), 'pep-req-42', 'AuthZEN "Request Identification": the identifier is echoed');
  assert.equal(response.headers.get('cache-control'), 'no-store');

  const denied = await callPdp(server, EVALUATION, evaluationOf(world, token, 'mail.send'), { token: pep });
  assert.equal(denied.json.decision, false);

  const entries = await evaluationsSince(mark);
  assert.equal(entries.length, 2, 'every decision is audited');
  const [allowed, refused] = entries;
  assert.equal(allowed?.actor, world.pepId, 'the entry names the PEP');
  assert.equal(allowed?.user, world.user.id);
  assert.equal(allowed?.agent, world.agentId);
  assert.deepEqual(allowed?.outcome, { decision: true, result: 'allow' });
  assert.deepEqual(allowed?.target, { resource: world.identifier, action: 'mail.read' });
  assert.equal(allowed?.reason?.token_digest, tokenDigest(token));
  assert.equal(allowed?.reason?.pep_request_id, 'pep-req-42');
  const decision = allowed?.reason?.policy_decision as Record<string, unknown>;
  assert.equal((decision.inputs as Record<string, unknown>).token_digest, tokenDigest(token));
  assert.equal(typeof (decision.inputs as Record<string, unknown>).arguments_sha256, 'string');
  assert.deepEqual(refused?.outcome, { decision: false, result: 'deny' });
  assert.equal(refused?.reason?.denied_by, 'token_scope');

  const rows = await server.ctx.db.selectFrom('audit_log').selectAll().where('seq', '>', mark).execute();
  const stored = JSON.stringify(rows);
  assert.ok(!stored.includes(token), 'the audit log never stores the agent token');
  assert.ok(!stored.includes(pep), 'the audit log never stores the PEP token');
  assert.ok(!server.logs.join('').includes(token), 'the log never contains the agent token');
});

test('DPoP-bound subject token reports cnf', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const token = await delegatedToken(server, world, 'mail.read');
  const jkt = 'Q1NjYTktZXhhbXBsZS10aHVtYnByaW50LXRlc3QtMDAx';

  // Mandate's own issuing code binds the token, as the token endpoint does for a DPoP proof.
  const delegation = await server.ctx.db.selectFrom('delegations').select(['id']).where('user_id', '=', world.user.id).where('client_id', '=', world.agentId).where('revoked_at', 'is', null).executeTakeFirstOrThrow();
  const bound = await issueAccessToken(server.ctx, { subject: world.user.id, clientId: world.agentId, actor: world.agentId, audience: world.identifier, scope: ['mail.read'], lifetimeSeconds: 300, delegationId: delegation.id, dpopJkt: jkt });

  const response = await evaluate(pep, evaluationOf(world, bound.token, 'mail.read'));
  assert.equal(response.decision, true);
  assert.deepEqual(response.context.cnf, { jkt }, 'RFC 9449 §6.1: the PEP gets the key to check the proof against');
  const plain = await evaluate(pep, evaluationOf(world, token, 'mail.read'));
  assert.equal(plain.context.cnf, undefined);
});

test('DPoP-bound PEP token needs a proof', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const agentToken = await delegatedToken(server, world, 'mail.read');
  const key = await generateDpopKey();
  const tokenUrl = `${server.issuer}/token`;
  const issued = await fetch(tokenUrl, {
    method: 'POST',
    headers: { authorization: basicAuthorization(world.pepId, world.pepSecret), 'content-type': 'application/x-www-form-urlencoded', dpop: await createProof(key, { htm: 'POST', htu: tokenUrl }) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/access` }),
  });
  const body = (await issued.json()) as { access_token: string; token_type: string };
  assert.equal(body.token_type, 'DPoP');
  const evaluationUrl = `${server.issuer}${EVALUATION}`;
  const request = JSON.stringify(evaluationOf(world, agentToken, 'mail.read'));

  // RFC 9449 §7.2: a bound token presented as a bearer token is rejected.
  const asBearer = await callPdp(server, EVALUATION, request, { token: body.access_token });
  assert.equal(asBearer.status, 401);
  assert.match(asBearer.headers.get('www-authenticate') ?? '', /^DPoP /);

  const unproven = await fetch(evaluationUrl, { method: 'POST', headers: { authorization: `DPoP ${body.access_token}`, 'content-type': 'application/json' }, body: request });
  assert.equal(unproven.status, 401, 'RFC 9449 §7.1: the DPoP scheme needs a proof');
  assert.equal(((await unproven.json()) as { error: string }).error, 'invalid_dpop_proof');

  const proof = await createProof(key, { htm: 'POST', htu: evaluationUrl, accessToken: body.access_token });
  const proven = await fetch(evaluationUrl, { method: 'POST', headers: { authorization: `DPoP ${body.access_token}`, dpop: proof, 'content-type': 'application/json' }, body: request });
  assert.equal(proven.status, 200);
  assert.equal(((await proven.json()) as { decision: boolean }).decision, true);

  const replayed = await fetch(evaluationUrl, { method: 'POST', headers: { authorization: `DPoP ${body.access_token}`, dpop: proof, 'content-type': 'application/json' }, body: request });
  assert.equal(replayed.status, 401, 'RFC 9449 §11.1: a proof is accepted once');
});
