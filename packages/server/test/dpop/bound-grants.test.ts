import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../harness.ts';
import { PASSWORD, seedWorld } from '../fixtures.ts';
import { launchBrowser, signIn, startCallbackServer, type CallbackServer } from '../browser.ts';
import { basicAuthorization, createProof, generateDpopKey, type DpopKey } from './proofs.ts';

describe('DPoP-bound codes and refresh tokens (RFC 9449 §5, §10)', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let key: DpopKey;
  let other: DpopKey;

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    browser = await launchBrowser();
    key = await generateDpopKey();
    other = await generateDpopKey('EdDSA');
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  /** Runs the authorization request with `dpop_jkt` through the real consent page and returns the code and verifier. */
  async function authorize(dpopJkt: string): Promise<{ code: string; verifier: string }> {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL(`${server.issuer}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: world.agent.client.client_id,
      redirect_uri: callback.url,
      scope: 'mail.read',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: world.resource.identifier,
      dpop_jkt: dpopJkt,
    }).toString();
    const page = await browser.newPage();
    try {
      await page.goto(url.href);
      await signIn(page, 'alice', PASSWORD);
      await page.click('#allow');
      const returned = await callback.next();
      return { code: returned.searchParams.get('code') ?? '', verifier };
    } finally {
      await page.close();
    }
  }

  async function token(form: Record<string, string>, proofKey: DpopKey | undefined) {
    const headers: Record<string, string> = { authorization: basicAuthorization(world.agent.client.client_id, world.agent.clientSecret ?? ''), 'content-type': 'application/x-www-form-urlencoded' };
    if (proofKey !== undefined) headers.dpop = await createProof(proofKey, { htm: 'POST', htu: `${server.issuer}/token` });
    const response = await fetch(`${server.issuer}/token`, { method: 'POST', headers, body: new URLSearchParams(form) });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  test('code and refresh token stay bound to the key', async () => {
    const { code, verifier } = await authorize(key.jkt);
    const row = await server.ctx.db.selectFrom('authorization_codes').select('dpop_jkt').where('client_id', '=', world.agent.client.client_id).executeTakeFirstOrThrow();
    assert.equal(row.dpop_jkt, key.jkt);

    const redeem = { grant_type: 'authorization_code', code, redirect_uri: callback.url, code_verifier: verifier };
    const withoutProof = await token(redeem, undefined);
    assert.equal(withoutProof.status, 400);
    assert.equal(withoutProof.body.error, 'invalid_grant');
    assert.equal(withoutProof.body.error_description, 'The authorization code is bound to a DPoP key; send a DPoP proof signed with that key.');

    const wrongKey = await token(redeem, other);
    assert.equal(wrongKey.status, 400);
    assert.equal(wrongKey.body.error, 'invalid_grant');
    assert.equal(wrongKey.body.error_description, 'The authorization code is bound to a different DPoP key than the one that signed the proof.');

    // The rejected attempts did not spend the code.
    const redeemed = await token(redeem, key);
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    assert.equal(redeemed.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(redeemed.body.access_token ?? '').cnf, { jkt: key.jkt });

    const refresh = { grant_type: 'refresh_token', refresh_token: redeemed.body.refresh_token ?? '' };
    const refreshWithoutProof = await token(refresh, undefined);
    assert.equal(refreshWithoutProof.status, 400);
    assert.equal(refreshWithoutProof.body.error_description, 'The refresh token is bound to a DPoP key; send a DPoP proof signed with that key.');
    const refreshWrongKey = await token(refresh, other);
    assert.equal(refreshWrongKey.status, 400);
    assert.equal(refreshWrongKey.body.error, 'invalid_grant');
    assert.equal(refreshWrongKey.body.error_description, 'The refresh token is bound to a different DPoP key than the one that signed the proof.');

    const refreshed = await token(refresh, key);
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(refreshed.body.access_token ?? '').cnf, { jkt: key.jkt });

    const rotated = await token({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token ?? '' }, other);
    assert.equal(rotated.status, 400);
    assert.equal(rotated.body.error_description, 'The refresh token is bound to a different DPoP key than the one that signed the proof.');
  });

  test('malformed dpop_jkt is rejected at authorization', async () => {
    const page = await browser.newPage();
    try {
      const url = new URL(`${server.issuer}/authorize`);
      url.search = new URLSearchParams({ response_type: 'code', client_id: world.agent.client.client_id, redirect_uri: callback.url, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256', resource: world.resource.identifier, dpop_jkt: 'short' }).toString();
      await page.goto(url.href).catch(() => undefined);
      const returned = await callback.next();
      assert.equal(returned.searchParams.get('error'), 'invalid_request');
      assert.equal(returned.searchParams.get('error_description'), 'dpop_jkt must be the base64url SHA-256 JWK thumbprint (43 characters) of the DPoP key.');
    } finally {
      await page.close();
    }
  });
});
