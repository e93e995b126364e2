import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { decodeJwt } from 'jose';

import { MandateAgent, TokenEndpointError } from '../src/index.ts';
import type { TokenExchangeRequest } from '../src/index.ts';
import { startTestServer } from '../../server/test/harness.ts';
import type { TestServer } from '../../server/test/harness.ts';
import { agentToken, consent, createExchangeWorld, idToken, personToken, refreshToken } from '../../server/test/token-exchange/exchange-world.ts';
import type { Agent, ExchangeWorld } from '../../server/test/token-exchange/exchange-world.ts';

const TYPE = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
};

/** Returns a fetch that forwards to the real server and records the form of each token request. */
function recordingFetch(forms: Array<Array<[string, string]>>): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname === '/token' && init?.body instanceof URLSearchParams) {
      forms.push([...init.body.entries()]);
    }
    return fetch(input, init);
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected the call to throw'),
    (error: unknown) => error,
  );
}

describe('MandateAgent.exchangeToken against Mandate (RFC 8693)', () => {
  let server: TestServer;
  let world: ExchangeWorld;
  let consentId: string;

  before(async () => {
    server = await startTestServer();
    world = await createExchangeWorld(server);
    consentId = await consent(server, world, world.assistant, 'notes.read notes.write');
  });
  after(() => server.stop());

  function agentFor(agent: Agent, options: { forms?: Array<Array<[string, string]>>; dpop?: boolean } = {}): MandateAgent {
    return new MandateAgent({
      issuer: server.issuer,
      clientId: agent.clientId,
      clientSecret: agent.secret,
      fetch: recordingFetch(options.forms ?? []),
      ...(options.dpop === undefined ? {} : { dpop: options.dpop }),
    });
  }

  it('keeps the original call signature', async () => {
    const forms: Array<Array<[string, string]>> = [];
    const actorToken = await agentToken(server, world, world.assistant);

    const token = await agentFor(world.assistant, { forms }).exchangeToken({
      subjectToken: await personToken(server, world),
      actorToken,
      resource: world.notes.identifier,
      scope: 'notes.read',
    });

    assert.equal(token.issuedTokenType, TYPE.access_token);
    assert.equal(token.scope, 'notes.read');
    const claims = decodeJwt(token.accessToken);
    assert.equal(claims.sub, world.alice.id);
    assert.deepEqual(claims.act, { sub: world.assistant.clientId });
    assert.deepEqual(forms[0]?.map(([name]) => name), ['grant_type', 'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'resource', 'scope']);
    assert.deepEqual(forms[0]?.filter(([name]) => name.endsWith('_type')).map(([, value]) => value), ['urn:ietf:params:oauth:grant-type:token-exchange', TYPE.access_token, TYPE.access_token]);
  });

  it('exchanges a refresh token and returns its successor', async () => {
    const subject = await refreshToken(server, world, world.assistant, consentId, 'notes.read notes.write');
    const agent = agentFor(world.assistant);

    const token = await agent.exchangeToken({ subjectToken: subject, subjectTokenType: 'refresh_token', scope: 'notes.read' });

    assert.equal(decodeJwt(token.accessToken).aud, world.notes.identifier);
    assert.equal(typeof token.refreshToken, 'string');
    assert.notEqual(token.refreshToken, subject);
    const refreshed = await agent.refresh({ refreshToken: token.refreshToken ?? '' });
    assert.equal(refreshed.scope, 'notes.read notes.write');
  });

  it('reports reuse of a spent refresh token', async () => {
    const delegationId = await consent(server, world, world.assistant, 'notes.read');
    const subject = await refreshToken(server, world, world.assistant, delegationId, 'notes.read');
    const agent = agentFor(world.assistant);
    await agent.exchangeToken({ subjectToken: subject, subjectTokenType: 'refresh_token' });

    const error = await rejection(agent.exchangeToken({ subjectToken: subject, subjectTokenType: 'refresh_token' }));

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_request');
    assert.match(error.description ?? '', /already used/);
  });

  it('exchanges an ID token for a named resource', async () => {
    const forms: Array<Array<[string, string]>> = [];

    const token = await agentFor(world.assistant, { forms }).exchangeToken({
      subjectToken: await idToken(server, world, world.assistant.clientId),
      subjectTokenType: 'id_token',
      resource: world.notes.identifier,
    });

    assert.equal(decodeJwt(token.accessToken).sub, world.alice.id);
    assert.equal(token.scope, 'notes.read notes.write');
    assert.deepEqual(forms[0]?.find(([name]) => name === 'subject_token_type'), ['subject_token_type', TYPE.id_token]);
  });

  it('sends the jwt token type', async () => {
    const forms: Array<Array<[string, string]>> = [];

    await agentFor(world.assistant, { forms }).exchangeToken({ subjectToken: await personToken(server, world), subjectTokenType: 'jwt', scope: 'notes.read' });

    assert.deepEqual(forms[0]?.find(([name]) => name === 'subject_token_type'), ['subject_token_type', TYPE.jwt]);
  });

  it('sends a refresh token as actor token', async () => {
    const forms: Array<Array<[string, string]>> = [];
    const actor = await refreshToken(server, world, world.assistant, consentId, 'notes.read');

    const token = await agentFor(world.assistant, { forms }).exchangeToken({
      subjectToken: await personToken(server, world),
      actorToken: actor,
      actorTokenType: 'refresh_token',
      scope: 'notes.read',
    });

    assert.equal(token.issuedTokenType, TYPE.access_token);
    assert.deepEqual(forms[0]?.find(([name]) => name === 'actor_token_type'), ['actor_token_type', TYPE.refresh_token]);
  });

  it('repeats resource and audience parameters', async () => {
    const forms: Array<Array<[string, string]>> = [];

    const token = await agentFor(world.assistant, { forms }).exchangeToken({
      subjectToken: await personToken(server, world),
      resource: [world.notes.identifier, world.notes.identifier],
      audience: [world.notes.identifier],
      scope: ['notes.read'],
    });

    assert.equal(decodeJwt(token.accessToken).aud, world.notes.identifier);
    assert.deepEqual(forms[0]?.filter(([name]) => name === 'resource' || name === 'audience'), [
      ['resource', world.notes.identifier],
      ['resource', world.notes.identifier],
      ['audience', world.notes.identifier],
    ]);
  });

  it('surfaces invalid_target for two audiences', async () => {
    const error = await rejection(agentFor(world.assistant).exchangeToken({
      subjectToken: await personToken(server, world),
      audience: [world.notes.identifier, world.calendar.identifier],
    }));

    // The server receives both values only if the SDK sends the parameter twice.
    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_target');
    assert.match(error.description ?? '', /2 different targets/);
  });

  it('sends requested_token_type', async () => {
    const forms: Array<Array<[string, string]>> = [];
    const agent = agentFor(world.assistant, { forms });

    const token = await agent.exchangeToken({ subjectToken: await personToken(server, world), requestedTokenType: 'access_token' });
    assert.equal(token.issuedTokenType, TYPE.access_token);
    assert.deepEqual(forms[0]?.find(([name]) => name === 'requested_token_type'), ['requested_token_type', TYPE.access_token]);

    const error = await rejection(agent.exchangeToken({ subjectToken: await personToken(server, world), requestedTokenType: 'refresh_token' }));
    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_request');
    assert.match(error.description ?? '', /issues only access tokens/);
  });

  it('re-exchanges its own DPoP-bound token', async () => {
    const agent = agentFor(world.assistant, { dpop: true });
    const first = await agent.exchangeToken({ subjectToken: await personToken(server, world), scope: 'notes.read notes.write' });
    const key = await agent.dpopKey();
    assert.deepEqual(decodeJwt(first.accessToken).cnf, { jkt: key?.thumbprint });

    const narrowed = await agent.exchangeToken({ subjectToken: first.accessToken, scope: 'notes.read' });

    assert.equal(narrowed.tokenType, 'DPoP');
    assert.deepEqual(decodeJwt(narrowed.accessToken).cnf, { jkt: key?.thumbprint });
  });

  it('cannot exchange a DPoP-bound token without the key', async () => {
    const bound = await agentFor(world.assistant, { dpop: true }).exchangeToken({ subjectToken: await personToken(server, world), scope: 'notes.read' });

    const error = await rejection(agentFor(world.assistant).exchangeToken({ subjectToken: bound.accessToken }));

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_request');
    assert.match(error.description ?? '', /bound to a DPoP key/);
  });

  it('hands its token on to a sub-agent', async () => {
    const holder = agentFor(world.assistant, { dpop: true });
    const holderToken = await holder.exchangeToken({ subjectToken: await personToken(server, world), scope: 'notes.read' });
    const subAgent = agentFor(world.helper, { dpop: true });
    const subAgentOwn = await subAgent.clientCredentials({ resource: world.notes.identifier, scope: 'notes.read' });

    // RFC 8693 §2.1: the holder names the sub-agent with the sub-agent's own token as actor_token.
    const handed = await holder.exchangeToken({ subjectToken: holderToken.accessToken, actorToken: subAgentOwn.accessToken, scope: 'notes.read' });

    assert.equal(handed.tokenType, 'DPoP');
    const claims = decodeJwt(handed.accessToken);
    assert.equal(claims.client_id, world.helper.clientId);
    assert.deepEqual(claims.act, { sub: world.helper.clientId, act: { sub: world.assistant.clientId } });
    assert.deepEqual(claims.cnf, { jkt: (await subAgent.dpopKey())?.thumbprint });
  });

  it('cannot take another agent token', async () => {
    const holderToken = await agentFor(world.assistant).exchangeToken({ subjectToken: await personToken(server, world), scope: 'notes.read' });

    const error = await rejection(agentFor(world.helper).exchangeToken({ subjectToken: holderToken.accessToken }));

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_request');
    assert.match(error.description ?? '', /^The subject_token's current actor is .+, so only .+ may hand it on/);
  });

  const invalidRequests: Array<[string, TokenExchangeRequest, RegExp]> = [
    ['an unknown subject token type', { subjectToken: 'token', subjectTokenType: 'saml2' as TokenExchangeRequest['subjectTokenType'] }, /subjectTokenType must be one of/],
    ['an actor token type without actor token', { subjectToken: 'token', actorTokenType: 'access_token' }, /actorTokenType needs an actorToken/],
    ['an empty subject token', { subjectToken: '' }, /subjectToken must be a non-empty string/],
  ];
  for (const [name, request, message] of invalidRequests) {
    it(`rejects ${name} before sending`, async () => {
      const forms: Array<Array<[string, string]>> = [];
      await assert.rejects(agentFor(world.assistant, { forms }).exchangeToken(request), (error: unknown) => error instanceof TypeError && message.test(error.message));
      assert.equal(forms.length, 0);
    });
  }
});
