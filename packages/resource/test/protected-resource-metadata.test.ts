import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { MemoryDpopReplayCache, protectedResourceMetadataUrl } from '../src/index.ts';
import { requestAgentToken, startMandateWorld } from './mandate-world.ts';
import type { MandateWorld } from './mandate-world.ts';

describe('MCP authorization with Mandate (RFC 9728)', () => {
  let state: MandateWorld;

  before(async () => {
    state = await startMandateWorld();
  });
  after(async () => state.close());

  it('serves the path-suffixed metadata document', async () => {
    assert.equal(state.metadataUrl, `${new URL(state.resource).origin}/.well-known/oauth-protected-resource/mail`);
    const response = await fetch(state.metadataUrl);

    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.deepEqual(await response.json(), {
      resource: state.resource,
      authorization_servers: [state.mandate.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: ['mail.read', 'mail.send'],
      dpop_signing_alg_values_supported: ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'PS256', 'RS256'],
    });
  });

  it('serves the root metadata document', async () => {
    const response = await fetch(`${new URL(state.resource).origin}/.well-known/oauth-protected-resource`);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { resource: string }).resource, state.resource);
  });

  it('names an authorization server with metadata', async () => {
    const response = await fetch(`${state.mandate.issuer}/.well-known/oauth-authorization-server`);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { issuer: string }).issuer, state.mandate.issuer);
  });

  it('puts resource_metadata in the 401 challenge', async () => {
    const response = await fetch(`${state.resource}/messages`);

    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${state.resource}", resource_metadata="${state.metadataUrl}", scope="mail.read", ` +
        `DPoP realm="${state.resource}", algs="EdDSA Ed25519 ES256 ES384 PS256 RS256", resource_metadata="${state.metadataUrl}", scope="mail.read"`,
    );
  });

  it('puts resource_metadata in an invalid_token challenge', async () => {
    const response = await fetch(`${state.resource}/messages`, { headers: { authorization: 'Bearer not.a.token' } });

    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${state.resource}", error="invalid_token", error_description="The access token is invalid.", resource_metadata="${state.metadataUrl}"`,
    );
  });

  it('names the needed scope in the 403', async () => {
    const token = await requestAgentToken(state, undefined, 'mail.send');
    const response = await fetch(`${state.resource}/messages`, { headers: { authorization: `Bearer ${token}` } });

    const description = 'The access token lacks a required scope: mail.read.';
    assert.equal(response.status, 403);
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${state.resource}", error="insufficient_scope", error_description="${description}", scope="mail.read", resource_metadata="${state.metadataUrl}"`,
    );
    assert.deepEqual(await response.json(), { error: 'insufficient_scope', error_description: description });
  });
});

describe('protectedResourceMetadataUrl', () => {
  it('uses the root form for a root resource', () => {
    assert.equal(protectedResourceMetadataUrl('https://api.example.test/'), 'https://api.example.test/.well-known/oauth-protected-resource');
  });

  it('appends the resource path', () => {
    assert.equal(
      protectedResourceMetadataUrl('https://api.example.test/mcp/v1'),
      'https://api.example.test/.well-known/oauth-protected-resource/mcp/v1',
    );
  });
});

describe('MemoryDpopReplayCache', () => {
  it('rejects a key it holds', () => {
    const cache = new MemoryDpopReplayCache();
    const expiresAt = Math.floor(Date.now() / 1000) + 60;
    assert.equal(cache.remember('a', expiresAt), true);
    assert.equal(cache.remember('a', expiresAt), false);
  });

  it('rejects new keys when full', () => {
    const cache = new MemoryDpopReplayCache({ maxEntries: 2 });
    const expiresAt = Math.floor(Date.now() / 1000) + 60;
    assert.equal(cache.remember('a', expiresAt), true);
    assert.equal(cache.remember('b', expiresAt), true);
    assert.equal(cache.remember('c', expiresAt), false);
    assert.equal(cache.size, 2);
  });

  it('makes room by dropping expired keys', () => {
    const cache = new MemoryDpopReplayCache({ maxEntries: 2 });
    const past = Math.floor(Date.now() / 1000) - 1;
    assert.equal(cache.remember('a', past), true);
    assert.equal(cache.remember('b', past), true);
    assert.equal(cache.remember('c', past + 120), true);
    assert.equal(cache.size, 1);
  });
});
