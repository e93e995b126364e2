import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { SignJWT, errors, exportSPKI } from 'jose';

import { AccessTokenVerifier, InvalidTokenError } from '../src/index.ts';
import { AUDIENCE, AuthorizationServerFixture, CLIENT_ID } from './authorization-server-fixture.ts';

let authorizationServer: AuthorizationServerFixture;

before(async () => {
  authorizationServer = await AuthorizationServerFixture.start();
});

after(async () => {
  await authorizationServer.close();
});

function createVerifier(overrides: Partial<ConstructorParameters<typeof AccessTokenVerifier>[0]> = {}): AccessTokenVerifier {
  return new AccessTokenVerifier({ issuer: authorizationServer.issuer, audience: AUDIENCE, ...overrides });
}

/** Awaits `promise`, requires an InvalidTokenError, and returns it for further checks. */
async function expectInvalidToken(promise: Promise<unknown>): Promise<InvalidTokenError> {
  const error = await promise.then(
    () => assert.fail('expected the token to be rejected'),
    (rejection: unknown) => rejection,
  );
  assert.ok(error instanceof InvalidTokenError, `expected InvalidTokenError, got ${String(error)}`);
  assert.equal(error.status, 401);
  assert.equal(error.error, 'invalid_token');
  return error;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('AccessTokenVerifier', () => {
  it('accepts a valid access token', async () => {
    const claims = authorizationServer.accessTokenClaims();
    claims.act = { sub: CLIENT_ID };
    claims.delegation_id = 'dlg-1';
    claims.tenant = 'acme';
    const token = await authorizationServer.signAccessToken(claims);

    const verified = await createVerifier().verify(token);

    assert.equal(verified.iss, authorizationServer.issuer);
    assert.equal(verified.sub, 'user-42');
    assert.deepEqual(verified.aud, [AUDIENCE]);
    assert.equal(verified.clientId, CLIENT_ID);
    assert.deepEqual(verified.scopes, ['repo:read', 'issues:write']);
    assert.deepEqual(verified.act, { sub: CLIENT_ID });
    assert.equal(verified.delegationId, 'dlg-1');
    assert.equal(verified.tenant, 'acme');
    assert.equal(verified.jti, claims.jti);
    assert.equal(verified.exp, claims.exp);
    assert.equal(verified.iat, claims.iat);
    assert.deepEqual(verified.raw, claims);
  });

  it('accepts typ application/at+jwt in any case', async () => {
    const token = await authorizationServer.signAccessToken(undefined, { typ: 'Application/AT+JWT' });
    const verified = await createVerifier().verify(token);
    assert.equal(verified.sub, 'user-42');
  });

  it('accepts aud as an array containing the audience', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), aud: ['https://other.example.test/', AUDIENCE] };
    const verified = await createVerifier().verify(await authorizationServer.signAccessToken(claims));
    assert.deepEqual(verified.aud, ['https://other.example.test/', AUDIENCE]);
  });

  it('returns no scopes when the scope claim is absent', async () => {
    const claims = authorizationServer.accessTokenClaims();
    delete claims.scope;
    const verified = await createVerifier().verify(await authorizationServer.signAccessToken(claims));
    assert.deepEqual(verified.scopes, []);
  });

  it('fetches metadata and JWKS once for many tokens', async () => {
    const verifier = createVerifier();
    const metadataBefore = authorizationServer.requestCounts.get('/.well-known/oauth-authorization-server') ?? 0;
    const jwksBefore = authorizationServer.requestCounts.get('/jwks') ?? 0;

    for (let i = 0; i < 3; i++) {
      await verifier.verify(await authorizationServer.signAccessToken());
    }

    assert.equal(authorizationServer.requestCounts.get('/.well-known/oauth-authorization-server'), metadataBefore + 1);
    assert.equal(authorizationServer.requestCounts.get('/jwks'), jwksBefore + 1);
  });

  it('skips discovery when jwksUri is given', async () => {
    const metadataBefore = authorizationServer.requestCounts.get('/.well-known/oauth-authorization-server') ?? 0;
    const verifier = createVerifier({ jwksUri: `${authorizationServer.issuer}/jwks` });

    await verifier.verify(await authorizationServer.signAccessToken());

    assert.equal(authorizationServer.requestCounts.get('/.well-known/oauth-authorization-server') ?? 0, metadataBefore);
  });

  it('rejects an ID token by its alg under the default algorithms', async () => {
    const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signIdToken()));
    assert.ok(error.cause instanceof errors.JOSEAlgNotAllowed);
  });

  it('rejects an ID token by its typ when RS256 is allowed', async () => {
    const verifier = createVerifier({ algorithms: ['EdDSA', 'RS256'] });
    const error = await expectInvalidToken(verifier.verify(await authorizationServer.signIdToken()));
    assert.ok(error.cause instanceof errors.JWTClaimValidationFailed);
    assert.equal(error.cause.claim, 'typ');
  });

  it('rejects an access token without typ', async () => {
    const token = await authorizationServer.signAccessToken(undefined, { typ: undefined });
    const error = await expectInvalidToken(createVerifier().verify(token));
    assert.ok(error.cause instanceof errors.JWTClaimValidationFailed);
    assert.equal(error.cause.claim, 'typ');
  });

  it('rejects a wrong audience', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), aud: 'https://other.example.test/' };
    const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken(claims)));
    assert.equal(error.description, 'The access token is not intended for this resource.');
    assert.ok(error.cause instanceof errors.JWTClaimValidationFailed);
    assert.equal(error.cause.claim, 'aud');
  });

  it('rejects a wrong issuer', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), iss: 'http://127.0.0.1:1' };
    const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken(claims)));
    assert.equal(error.description, 'The access token is invalid.');
    assert.ok(error.cause instanceof errors.JWTClaimValidationFailed);
    assert.equal(error.cause.claim, 'iss');
  });

  it('rejects an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { ...authorizationServer.accessTokenClaims(), iat: now - 600, exp: now - 60 };
    const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken(claims)));
    assert.equal(error.description, 'The access token has expired.');
    assert.ok(error.cause instanceof errors.JWTExpired);
  });

  it('accepts a token expired within the clock tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { ...authorizationServer.accessTokenClaims(), iat: now - 600, exp: now - 2 };
    const verified = await createVerifier({ clockToleranceSeconds: 30 }).verify(
      await authorizationServer.signAccessToken(claims),
    );
    assert.equal(verified.exp, now - 2);
  });

  it('rejects an iat in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { ...authorizationServer.accessTokenClaims(), iat: now + 120, exp: now + 600 };
    const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken(claims)));
    assert.match(String((error.cause as Error).message), /iat/);
  });

  it('rejects alg none', async () => {
    const token = `${base64url({ alg: 'none', typ: 'at+jwt' })}.${base64url(authorizationServer.accessTokenClaims())}.`;
    const error = await expectInvalidToken(createVerifier().verify(token));
    assert.ok(error.cause instanceof errors.JOSEAlgNotAllowed);
  });

  it('rejects HS256 keyed with the public key', async () => {
    const publicKeyPem = await exportSPKI(authorizationServer.accessTokenKey.publicKey);
    const token = await new SignJWT(authorizationServer.accessTokenClaims())
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'at-ed25519' })
      .sign(new TextEncoder().encode(publicKeyPem));

    const error = await expectInvalidToken(createVerifier().verify(token));
    assert.ok(error.cause instanceof errors.JOSEAlgNotAllowed);

    // The verifier also refuses a configuration that would allow HS256.
    assert.throws(() => createVerifier({ algorithms: ['HS256'] }), TypeError);
  });

  it('rejects an unknown kid', async () => {
    const token = await authorizationServer.signAccessToken(undefined, { kid: 'retired-key' });
    const error = await expectInvalidToken(createVerifier().verify(token));
    assert.ok(error.cause instanceof errors.JWKSNoMatchingKey);
  });

  it('rejects a bad signature', async () => {
    const token = await authorizationServer.signAccessToken();
    const [header, payload] = token.split('.');
    const forged = `${header}.${payload}.${Buffer.alloc(64).toString('base64url')}`;
    const error = await expectInvalidToken(createVerifier().verify(forged));
    assert.ok(error.cause instanceof errors.JWSSignatureVerificationFailed);
  });

  for (const claim of ['jti', 'client_id', 'sub', 'iat', 'exp']) {
    it(`rejects a token without ${claim}`, async () => {
      const claims = authorizationServer.accessTokenClaims();
      delete claims[claim];
      const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken(claims)));
      assert.ok(error.cause instanceof errors.JWTClaimValidationFailed);
      assert.equal(error.cause.claim, claim);
      assert.equal(error.cause.reason, 'missing');
    });
  }

  it('rejects a non-string client_id', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), client_id: 7 };
    const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken(claims)));
    assert.match((error.cause as Error).message, /client_id/);
  });

  it('rejects an act claim without sub', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), act: { client: CLIENT_ID } };
    const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken(claims)));
    assert.match((error.cause as Error).message, /act/);
  });

  it('rejects a malformed token', async () => {
    const error = await expectInvalidToken(createVerifier().verify('not-a-jwt'));
    assert.ok(error.cause instanceof errors.JWTInvalid || error.cause instanceof errors.JWSInvalid);
  });

  it('keeps the token out of the error', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), aud: 'https://other.example.test/' };
    const token = await authorizationServer.signAccessToken(claims);
    const error = await expectInvalidToken(createVerifier().verify(token));
    assert.ok(!error.message.includes(token));
    assert.ok(!error.wwwAuthenticate.includes(token));
    assert.ok(!JSON.stringify(error.toJSON()).includes(token));
  });

  it('rejects metadata naming another issuer', async () => {
    authorizationServer.publishedIssuer = 'http://127.0.0.1:1';
    try {
      const error = await expectInvalidToken(createVerifier().verify(await authorizationServer.signAccessToken()));
      assert.match((error.cause as Error).message, /names issuer/);
    } finally {
      authorizationServer.publishedIssuer = undefined;
    }
  });

  it('retries discovery after a failure', async () => {
    const verifier = createVerifier();
    authorizationServer.publishedIssuer = 'http://127.0.0.1:1';
    try {
      await expectInvalidToken(verifier.verify(await authorizationServer.signAccessToken()));
    } finally {
      authorizationServer.publishedIssuer = undefined;
    }
    const verified = await verifier.verify(await authorizationServer.signAccessToken());
    assert.equal(verified.sub, 'user-42');
  });

  it('rejects an http issuer on a non-loopback host', () => {
    assert.throws(
      () => new AccessTokenVerifier({ issuer: 'http://mandate.example.test', audience: AUDIENCE }),
      /must use https/,
    );
  });
});
