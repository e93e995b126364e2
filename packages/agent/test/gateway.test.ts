import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { ApprovalRequiredError, ForbiddenError, MandateAgent, UnauthorizedError } from '../src/index.ts';
import { FakeMandateServer } from './fake-mandate-server.ts';
import type { RecordedRequest } from './fake-mandate-server.ts';

const ACCESS_TOKEN = 'eyJ.access-token-under-test.sig';

let server: FakeMandateServer;
let agent: MandateAgent;

before(async () => {
  server = await FakeMandateServer.start();
  agent = new MandateAgent({ issuer: server.issuer, clientId: 'agent-7', clientSecret: 'secret' });
});

afterEach(() => {
  server.reset();
});

after(async () => {
  await server.close();
});

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected the gateway call to throw'),
    (error: unknown) => error,
  );
}

describe('MandateAgent.callGateway', () => {
  it('sends the bearer token and returns a 2xx response', async () => {
    server.handler = () => ({ status: 201, body: { id: 17 } });

    const response = await agent.callGateway({
      url: 'github/repos/acme/api/issues?state=open',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic ignored' },
      body: JSON.stringify({ title: 'Bug' }),
      accessToken: ACCESS_TOKEN,
    });

    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { id: 17 });
    assert.equal(server.requests.length, 1);
    const request = server.requests[0] as RecordedRequest;
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/gateway/github/repos/acme/api/issues?state=open');
    assert.equal(request.headers.authorization, `Bearer ${ACCESS_TOKEN}`);
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.body, '{"title":"Bug"}');
    assert.equal(request.headers['mandate-approval'], undefined);
  });

  it('accepts an absolute URL', async () => {
    server.handler = () => ({ status: 204 });

    const response = await agent.callGateway({ url: `${server.issuer}/gateway/github/user`, accessToken: ACCESS_TOKEN });

    assert.equal(response.status, 204);
    assert.equal((server.requests[0] as RecordedRequest).path, '/gateway/github/user');
    assert.equal((server.requests[0] as RecordedRequest).method, 'GET');
  });

  it('returns a 5xx response without retrying', async () => {
    server.handler = () => ({ status: 503, body: { error: 'temporarily_unavailable' } });

    const response = await agent.callGateway({ url: 'github/user', accessToken: ACCESS_TOKEN });

    assert.equal(response.status, 503);
    assert.equal(server.requests.length, 1);
  });

  it('returns a redirect without following it', async () => {
    server.handler = () => ({ status: 302, headers: { location: `${server.issuer}/elsewhere` } });

    const response = await agent.callGateway({ url: 'github/user', accessToken: ACCESS_TOKEN });

    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), `${server.issuer}/elsewhere`);
    assert.equal(server.requests.length, 1);
  });

  it('throws UnauthorizedError on 401 without retrying', async () => {
    const challenge = 'Bearer realm="mandate", error="invalid_token", error_description="The access token has expired."';
    server.handler = () => ({
      status: 401,
      body: { error: 'invalid_token', error_description: 'The access token has expired.' },
      headers: { 'www-authenticate': challenge },
    });

    const error = await rejection(agent.callGateway({ url: 'github/user', accessToken: ACCESS_TOKEN }));

    assert.ok(error instanceof UnauthorizedError);
    assert.equal(error.status, 401);
    assert.equal(error.error, 'invalid_token');
    assert.equal(error.description, 'The access token has expired.');
    assert.equal(error.wwwAuthenticate, challenge);
    assert.ok(!error.message.includes(ACCESS_TOKEN));
    assert.equal(server.requests.length, 1);
  });

  it('throws ApprovalRequiredError on 403 approval_required', async () => {
    server.handler = () => ({
      status: 403,
      body: {
        error: 'approval_required',
        error_description: 'A person must approve this request.',
        approval_id: 'apr-9',
        approval_uri: `${server.issuer}/approvals/apr-9`,
        expires_in: 900,
      },
    });

    const error = await rejection(
      agent.callGateway({ url: 'github/repos/acme/api', method: 'DELETE', accessToken: ACCESS_TOKEN }),
    );

    assert.ok(error instanceof ApprovalRequiredError);
    assert.ok(error instanceof ForbiddenError);
    assert.equal(error.status, 403);
    assert.equal(error.error, 'approval_required');
    assert.equal(error.description, 'A person must approve this request.');
    assert.equal(error.approvalId, 'apr-9');
    assert.equal(error.approvalUri, `${server.issuer}/approvals/apr-9`);
    assert.equal(error.expiresIn, 900);
    assert.ok(!error.message.includes(ACCESS_TOKEN));
    assert.equal(server.requests.length, 1);
  });

  it('sends Mandate-Approval when repeating an approved request', async () => {
    server.handler = () => ({ status: 200, body: { deleted: true } });

    const response = await agent.callGateway({
      url: 'github/repos/acme/api',
      method: 'DELETE',
      accessToken: ACCESS_TOKEN,
      approvalId: 'apr-9',
    });

    assert.equal(response.status, 200);
    const request = server.requests[0] as RecordedRequest;
    assert.equal(request.headers['mandate-approval'], 'apr-9');
    assert.equal(request.method, 'DELETE');
  });

  for (const error of ['access_denied', 'insufficient_scope']) {
    it(`throws ForbiddenError on 403 ${error}`, async () => {
      server.handler = () => ({ status: 403, body: { error, error_description: 'Denied by policy.' } });

      const thrown = await rejection(agent.callGateway({ url: 'github/user', accessToken: ACCESS_TOKEN }));

      assert.ok(thrown instanceof ForbiddenError);
      assert.ok(!(thrown instanceof ApprovalRequiredError));
      assert.equal(thrown.status, 403);
      assert.equal(thrown.error, error);
      assert.equal(thrown.description, 'Denied by policy.');
      assert.equal(server.requests.length, 1);
    });
  }

  it('throws ForbiddenError for approval_required without approval_id', async () => {
    server.handler = () => ({ status: 403, body: { error: 'approval_required' } });

    const error = await rejection(agent.callGateway({ url: 'github/user', accessToken: ACCESS_TOKEN }));

    assert.ok(error instanceof ForbiddenError);
    assert.ok(!(error instanceof ApprovalRequiredError));
    assert.equal(error.error, 'approval_required');
  });

  it('throws ForbiddenError for a 403 without a JSON body', async () => {
    server.handler = () => ({ status: 403, body: 'Forbidden' });

    const error = await rejection(agent.callGateway({ url: 'github/user', accessToken: ACCESS_TOKEN }));

    assert.ok(error instanceof ForbiddenError);
    assert.equal(error.error, undefined);
    assert.equal(error.description, undefined);
  });

  it('rejects an http URL on a non-loopback host', async () => {
    await assert.rejects(
      async () => agent.callGateway({ url: 'http://gateway.example.test/github/user', accessToken: ACCESS_TOKEN }),
      /must use https/,
    );
    assert.equal(server.requests.length, 0);
  });
});
