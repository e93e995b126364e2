import { z } from 'zod';

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const publicJwk = z
  .looseObject({
    kty: z.enum(['RSA', 'EC', 'OKP'], 'must be RSA, EC or OKP (asymmetric keys only)'),
    kid: z.string().min(1).optional(),
    use: z.literal('sig', 'must be sig when present').optional(),
  })
  .refine((jwk) => PRIVATE_JWK_MEMBERS.every((member) => !(member in jwk)), 'must be a public key: remove the private members (d, p, q, dp, dq, qi, k)');

/** The public JWK Set a client registers for private_key_jwt authentication (RFC 7523 §3): asymmetric public keys only. */
export const publicJwkSet = z
  .strictObject({ keys: z.array(publicJwk).min(1, 'must contain at least one key').max(10) })
  .describe('Public JWK Set for private_key_jwt client authentication (RFC 7523); without it a client_secret_basic secret is generated');
