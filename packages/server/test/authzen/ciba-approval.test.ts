import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { delegatedToken } from '../gateway/world.ts';
import { setPolicy } from '../policy/policy-world.ts';
import { backchannelRequest, cibaTokenRequest, personDecides } from '../ciba/ciba-world.ts';
import { callPdp, createAuthzenWorld, evaluationOf, pepToken } from './authzen-world.ts';

const EVALUATION = '/access/v1/evaluation';

let server: TestServer;
let api: AdminApi;

before(async () => {
  server = await startTestServer({ cibaPollIntervalSeconds: 1 });
  api = await adminApi(server);
});

after(async () => {
  await server.stop();
});

test('CIBA approval from the decision context', async () => {
  const world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  const pep = await pepToken(server, world);
  const token = await delegatedToken(server, world, 'refund');
  const refund = { amount: 20 };

  const required = await callPdp(server, EVALUATION, evaluationOf(world, token, 'refund', { arguments: refund }), { token: pep });
  assert.equal(required.json.decision, false);
  const context = required.json.context as { result: string; approval: { authorization_details: unknown[]; backchannel_authentication_endpoint: string } };
  assert.equal(context.result, 'approval_required');
  assert.equal(context.approval.backchannel_authentication_endpoint, `${server.issuer}/bc-authorize`);

  // The agent sends the details from the context unchanged to the CIBA endpoint (CIBA Core 1.0 §7.1).
  const backchannel = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, binding_message: 'Refund R-20', authorization_details: JSON.stringify(context.approval.authorization_details) });
  assert.equal(backchannel.status, 200, JSON.stringify(backchannel.body));
  await personDecides(server, world, 'Refund R-20', 'approve');
  const issued = await cibaTokenRequest(server, world, String(backchannel.body.auth_req_id));
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  const approvedToken = String(issued.body.access_token);

  const other = await callPdp(server, EVALUATION, evaluationOf(world, approvedToken, 'refund', { arguments: { amount: 2000 } }), { token: pep });
  assert.equal(other.json.decision, false, 'RFC 9396: the token allows only the approved arguments');
  assert.equal((other.json.context as Record<string, unknown>).denied_by, 'authorization_details');

  const approved = await callPdp(server, EVALUATION, evaluationOf(world, approvedToken, 'refund', { arguments: refund }), { token: pep });
  assert.equal(approved.json.decision, true, 'the advance approval replaces the approval the call needs');
  assert.match(String((approved.json.context as Record<string, unknown>).approval_id), /^cib_/);

  // This resource has no gateway upstream, so the PEP's evaluation is the enforcement and uses the approval once.
  const again = await callPdp(server, EVALUATION, evaluationOf(world, approvedToken, 'refund', { arguments: refund }), { token: pep });
  assert.equal(again.json.decision, false, 'the advance approval allows one call');
  assert.equal((again.json.context as Record<string, unknown>).result, 'approval_required');
});
