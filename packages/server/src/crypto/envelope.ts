import { hkdfSync } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';

/**
 * Envelope encryption as a compact JWE: `enc: A256GCM` encrypts the value under a fresh random
 * content key per record, and `alg: A256GCMKW` wraps that key with the master key (RFC 7518
 * §4.7, §5.3). The record's context travels in the protected header, which is authenticated,
 * so a ciphertext copied to another record fails to decrypt.
 */
export class Envelope {
  readonly #masterKey: Uint8Array;

  constructor(masterKey: Uint8Array) {
    this.#masterKey = masterKey;
  }

  async seal(plaintext: string, context: string): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({ alg: 'A256GCMKW', enc: 'A256GCM', ctx: context })
      .encrypt(this.#masterKey);
  }

  /**
   * Derives a 256-bit key for one purpose from the master key with HKDF-SHA-256 (RFC 5869), so
   * every process sharing the master key derives the same key without storing it.
   */
  deriveKey(purpose: string): Uint8Array {
    return new Uint8Array(hkdfSync('sha256', this.#masterKey, new Uint8Array(0), `mandate ${purpose}`, 32));
  }

  async open(jwe: string, context: string): Promise<string> {
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, this.#masterKey, {
      keyManagementAlgorithms: ['A256GCMKW'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    if (protectedHeader.ctx !== context) throw new Error(`Encrypted value belongs to ${String(protectedHeader.ctx)}, not ${context}.`);
    return new TextDecoder().decode(plaintext);
  }
}
