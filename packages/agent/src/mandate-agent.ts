import { discoverTokenEndpoint } from './authorization-server-metadata.ts';
import { approvalStatusUrl, callWithApproval, readApprovalStatus } from './approval-wait.ts';
import type { ApprovalStatus, ApprovalStatusRequest, ApprovalWaitOptions } from './approval-wait.ts';
import { authenticateTokenRequest } from './client-authentication.ts';
import type { ClientAuthentication } from './client-authentication.ts';
import type { DpopKey } from './dpop-key.ts';
import { DpopProver } from './dpop-proof.ts';
import { InvalidResponseError } from './errors.ts';
import { sendGatewayRequest } from './gateway.ts';
import type { GatewayRequest } from './gateway.ts';
import { parseSecureUrl } from './secure-url.ts';
import { inferSigningAlgorithm } from './signing-algorithm.ts';
import type { ClientAssertionAlgorithm, ClientAssertionKey } from './signing-algorithm.ts';
import { expectedIssuedTokenType, tokenExchangeParameters } from './token-exchange.ts';
import type { TokenExchangeRequest } from './token-exchange.ts';
import { readJsonObject, readTokenResponse } from './token-response.ts';
import type { TokenResponse } from './token-response.ts';

export interface MandateAgentOptions {
  /** Issuer URL of the Mandate server, exactly as its metadata publishes it. */
  issuer: string;
  clientId: string;
  /** Client secret, for client_secret_basic. Give this or `privateKey`, not both. */
  clientSecret?: string;
  /** Private key, for private_key_jwt (RFC 7523). Give this or `clientSecret`, not both. */
  privateKey?: ClientAssertionKey;
  /** Algorithm for the client assertion. Inferred from `privateKey` when left out. */
  privateKeyAlg?: ClientAssertionAlgorithm;
  /** `kid` header of the client assertion. Defaults to the `kid` of a JWK `privateKey`. */
  keyId?: string;
  /**
   * Sender-constrains every token with DPoP (RFC 9449). `true` generates an
   * Ed25519 key pair with a non-extractable private key on first use, kept
   * for the life of this agent. A WebCrypto CryptoKeyPair (Ed25519, ECDSA
   * P-256 or P-384, RSA-PSS or RSASSA-PKCS1-v1_5 with SHA-256) is used as given.
   */
  dpop?: boolean | CryptoKeyPair;
  /** fetch implementation for every request. Defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** A space-separated scope string, or a list of scope values. */
export type ScopeInput = string | string[];

/**
 * Client for an agent process: gets access tokens from the Mandate token
 * endpoint and calls resources through the Mandate gateway.
 *
 * Every method sends exactly one request, with two exceptions. A DPoP
 * request the server rejects with `use_dpop_nonce` is sent once more with the
 * server's nonce (RFC 9449 §8, §9). callGatewayWithApproval polls the
 * approval's status and then repeats its request once. The SDK never retries
 * otherwise, never tries other credentials and never substitutes another
 * token, so every failure reaches the caller as an error.
 */
export class MandateAgent {
  readonly issuer: string;
  readonly clientId: string;
  readonly #authentication: ClientAuthentication;
  readonly #fetch: typeof fetch;
  readonly #dpop: DpopProver | undefined;
  #tokenEndpoint: Promise<URL> | undefined;

  constructor(options: MandateAgentOptions) {
    parseSecureUrl(options.issuer, 'issuer');
    if (typeof options.clientId !== 'string' || options.clientId === '') {
      throw new TypeError('clientId must be a non-empty string');
    }
    this.issuer = options.issuer;
    this.clientId = options.clientId;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#authentication = chooseClientAuthentication(options);
    this.#dpop = chooseDpopProver(options.dpop);
  }

  /**
   * Returns the DPoP key, generating it on the first call, or undefined
   * without the `dpop` option. Its `thumbprint` is the `dpop_jkt`
   * authorization request parameter (RFC 9449 §10).
   */
  async dpopKey(): Promise<DpopKey | undefined> {
    return this.#dpop?.key();
  }

  /** Requests a token for the agent itself (RFC 6749 §4.4) for `resource` (RFC 8707). */
  clientCredentials(request: { resource: string; scope?: ScopeInput }): Promise<TokenResponse> {
    return this.#requestToken(
      { grant_type: 'client_credentials', resource: request.resource },
      request.scope,
    );
  }

  /**
   * Exchanges a refresh token for new tokens (RFC 6749 §6). Mandate rotates
   * refresh tokens: the response carries a new one and the old one stops working.
   */
  refresh(request: { refreshToken: string; scope?: ScopeInput }): Promise<TokenResponse> {
    return this.#requestToken(
      { grant_type: 'refresh_token', refresh_token: request.refreshToken },
      request.scope,
    );
  }

  /**
   * Exchanges a token that represents a person for an access token the agent
   * holds on their behalf (RFC 8693 §2.1). The subject and actor tokens are
   * sent as access tokens unless `subjectTokenType` or `actorTokenType` names
   * another type. With the `dpop` option the request carries a proof, which
   * Mandate requires when a subject or actor token is bound to this agent's
   * key. Throws InvalidResponseError when the response's `issued_token_type`
   * is not the requested type (access token by default).
   */
  async exchangeToken(request: TokenExchangeRequest & { scope?: ScopeInput }): Promise<TokenResponse> {
    const parameters = tokenExchangeParameters(request);
    const expected = expectedIssuedTokenType(request);

    const response = await this.#requestToken(parameters, request.scope);
    // RFC 8693 §2.2.1: issued_token_type is required and names the type of the issued token.
    if (response.issuedTokenType !== expected) {
      throw new InvalidResponseError(`Token exchange response has issued_token_type ${String(response.issuedTokenType)}, expected ${expected}`);
    }
    return response;
  }

  /**
   * Sends one request through the gateway with `accessToken` and returns the
   * response for any status except 401 (throws UnauthorizedError) and 403
   * (throws ApprovalRequiredError for approval_required, else ForbiddenError).
   * After a person approves, repeat the same request with `approvalId`.
   * With the `dpop` option the token goes under the DPoP scheme with a proof
   * bound to it.
   */
  async callGateway(request: GatewayRequest): Promise<Response> {
    const gatewayBase = `${this.issuer.replace(/\/$/, '')}/gateway/`;
    const url = parseSecureUrl(new URL(request.url, gatewayBase), 'gateway request URL');
    return sendGatewayRequest(url, request, this.#fetch, this.#dpop);
  }

  /**
   * Sends one request through the gateway like callGateway. When it needs a
   * person's approval, waits for the decision and then repeats the exact
   * request once with the approval. Throws ApprovalDeniedError,
   * ApprovalExpiredError or another ApprovalRejectedError when the approval
   * cannot be used, and ApprovalTimeoutError when the person does not decide in time.
   * `request.signal` cancels the wait too. The body must be one that can be
   * sent twice unchanged (not a stream or FormData).
   *
   * NOTE: the repeated request carries the same access token, so a token
   * that expires during the wait makes it fail with UnauthorizedError. Get a
   * new token for the same delegation and send the request with `approvalId`.
   */
  async callGatewayWithApproval(request: GatewayRequest, options: ApprovalWaitOptions = {}): Promise<Response> {
    return callWithApproval(request, options, {
      send: (gatewayRequest) => this.callGateway(gatewayRequest),
      readStatus: (statusRequest) => this.approvalStatus(statusRequest),
    });
  }

  /**
   * Requests the status of an approval at `<issuer>/approvals/{id}/status`
   * with the access token of the call that needs it, which must belong to
   * the same delegation as that call.
   */
  async approvalStatus(request: ApprovalStatusRequest): Promise<ApprovalStatus> {
    const url = parseSecureUrl(approvalStatusUrl(this.issuer, request.approvalId), 'approval status URL');
    return readApprovalStatus(url, request, this.#fetch, this.#dpop);
  }

  async #requestToken(grantParameters: Record<string, string> | Array<[string, string]>, scope: ScopeInput | undefined): Promise<TokenResponse> {
    const parameters = new URLSearchParams(grantParameters);
    const scopeString = Array.isArray(scope) ? scope.join(' ') : scope;
    if (scopeString !== undefined && scopeString !== '') {
      parameters.set('scope', scopeString);
    }

    // Discover first, so the short-lived client assertion is signed right before it is sent.
    const tokenEndpoint = await this.#getTokenEndpoint();
    let response = await this.#sendTokenRequest(tokenEndpoint, parameters);

    if (this.#dpop !== undefined) {
      const nonceReceived = this.#dpop.storeNonce(tokenEndpoint, response);
      // RFC 9449 §8: the server wants a nonce in the proof. Send the request
      // once more with the nonce, a new proof and a new client assertion.
      if (nonceReceived && response.status === 400 && (await readJsonObject(response.clone()))?.error === 'use_dpop_nonce') {
        await response.body?.cancel();
        response = await this.#sendTokenRequest(tokenEndpoint, parameters);
        this.#dpop.storeNonce(tokenEndpoint, response);
      }
    }
    return readTokenResponse(response, scopeString, this.#dpop === undefined ? 'Bearer' : 'DPoP');
  }

  async #sendTokenRequest(tokenEndpoint: URL, grantParameters: URLSearchParams): Promise<Response> {
    const parameters = new URLSearchParams(grantParameters);
    const headers = new Headers({
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
    });
    await authenticateTokenRequest(this.#authentication, this.issuer, headers, parameters);
    if (this.#dpop !== undefined) {
      headers.set('dpop', await this.#dpop.createProof('POST', tokenEndpoint));
    }

    return this.#fetch(tokenEndpoint, {
      method: 'POST',
      headers,
      body: parameters,
      redirect: 'manual',
    });
  }

  #getTokenEndpoint(): Promise<URL> {
    if (this.#tokenEndpoint === undefined) {
      this.#tokenEndpoint = discoverTokenEndpoint(this.issuer, this.#fetch);
      // A failed discovery is not cached, so the next call tries again.
      this.#tokenEndpoint.catch(() => {
        this.#tokenEndpoint = undefined;
      });
    }
    return this.#tokenEndpoint;
  }
}

function chooseDpopProver(option: MandateAgentOptions['dpop']): DpopProver | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return new DpopProver(undefined);
  return new DpopProver(option);
}

function chooseClientAuthentication(options: MandateAgentOptions): ClientAuthentication {
  const hasSecret = options.clientSecret !== undefined;
  const hasKey = options.privateKey !== undefined;
  if (hasSecret === hasKey) {
    throw new TypeError(
      'MandateAgent needs exactly one of clientSecret (client_secret_basic) or privateKey (private_key_jwt)',
    );
  }

  if (options.clientSecret !== undefined) {
    if (options.clientSecret === '') {
      throw new TypeError('clientSecret must not be empty');
    }
    return { method: 'client_secret_basic', clientId: options.clientId, clientSecret: options.clientSecret };
  }

  const privateKey = options.privateKey as ClientAssertionKey;
  const jwkKeyId = (privateKey as { kid?: unknown }).kid;
  return {
    method: 'private_key_jwt',
    clientId: options.clientId,
    privateKey,
    algorithm: options.privateKeyAlg ?? inferSigningAlgorithm(privateKey),
    keyId: options.keyId ?? (typeof jwkKeyId === 'string' ? jwkKeyId : undefined),
  };
}
