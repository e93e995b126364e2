import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Db } from '../store/db.ts';
import { nowSeconds } from '../store/ids.ts';
import type { Envelope } from './envelope.ts';

/** Access tokens use EdDSA (Ed25519); ID tokens RS256, which every OIDC relying party accepts. */
const ALGORITHMS = { access_token: 'EdDSA', id_token: 'RS256' } as const;

export type KeyPurpose = keyof typeof ALGORITHMS;

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface KeyRing {
  accessToken: SigningKey;
  idToken: SigningKey;
  /** Public keys of every active key, as published at the JWKS endpoint. */
  jwks: { keys: JWK[] };
}

/** Loads the active signing keys, generating each one on first start. */
export async function loadKeyRing(db: Db, envelope: Envelope): Promise<KeyRing> {
  const accessToken = await loadOrCreate(db, envelope, 'access_token');
  const idToken = await loadOrCreate(db, envelope, 'id_token');
  return { accessToken, idToken, jwks: { keys: [accessToken.publicJwk, idToken.publicJwk] } };
}

async function loadOrCreate(db: Db, envelope: Envelope, purpose: KeyPurpose): Promise<SigningKey> {
  const existing = await findActive(db, purpose);
  if (existing !== undefined) return decrypt(envelope, existing);

  const created = await createKey(envelope, purpose);
  try {
    await db.insertInto('signing_keys').values(created.row).execute();
    return created.key;
  } catch (error) {
    // Another process created the key at the same moment; use the stored one.
    const stored = await findActive(db, purpose);
    if (stored === undefined) throw error;
    return decrypt(envelope, stored);
  }
}

async function findActive(db: Db, purpose: KeyPurpose) {
  return db
    .selectFrom('signing_keys')
    .selectAll()
    .where('purpose', '=', purpose)
    .where('status', '=', 'active')
    .orderBy('created_at', 'asc')
    .orderBy('kid', 'asc')
    .executeTakeFirst();
}

async function createKey(envelope: Envelope, purpose: KeyPurpose) {
  const alg = ALGORITHMS[purpose];
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const published: JWK = { ...publicJwk, kid, alg, use: 'sig' };
  const privateJwk = JSON.stringify(await exportJWK(privateKey));

  const row = {
    kid,
    purpose,
    alg,
    public_jwk: JSON.stringify(published),
    private_jwk_encrypted: await envelope.seal(privateJwk, `signing_key:${kid}`),
    status: 'active' as const,
    created_at: nowSeconds(),
  };
  const key = await decrypt(envelope, row);
  return { row, key };
}

async function decrypt(envelope: Envelope, row: { kid: string; alg: string; public_jwk: string; private_jwk_encrypted: string }): Promise<SigningKey> {
  const privateJwk = JSON.parse(await envelope.open(row.private_jwk_encrypted, `signing_key:${row.kid}`)) as JWK;
  const privateKey = (await importJWK(privateJwk, row.alg)) as CryptoKey;
  return { kid: row.kid, alg: row.alg, privateKey, publicJwk: JSON.parse(row.public_jwk) as JWK };
}
