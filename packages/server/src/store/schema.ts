/**
 * Database tables. Times are Unix seconds. Flags are 0/1 integers and lists are JSON text,
 * so that SQLite and PostgreSQL store the same values.
 */
export interface Database {
  tenants: TenantTable;
  users: UserTable;
  roles: RoleTable;
  role_permissions: RolePermissionTable;
  user_roles: UserRoleTable;
  client_roles: ClientRoleTable;
  clients: ClientTable;
  resources: ResourceTable;
  resource_actions: ResourceActionTable;
  delegations: DelegationTable;
  authorization_codes: AuthorizationCodeTable;
  refresh_tokens: RefreshTokenTable;
  sessions: SessionTable;
  approvals: ApprovalTable;
  connections: ConnectionTable;
  signing_keys: SigningKeyTable;
  client_assertion_ids: ClientAssertionIdTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  dpop_proofs: DpopProofTable;
  revoked_access_tokens: RevokedAccessTokenTable;
  pushed_authorization_requests: PushedAuthorizationRequestTable;
  registration_policies: RegistrationPolicyTable;
  policies: PolicyTable;
  ciba_requests: CibaRequestTable;
}

export interface TenantTable {
  id: string;
  name: string;
  created_at: number;
}

export interface UserTable {
  id: string;
  tenant_id: string;
  username: string;
  display_name: string;
  email: string | null;
  password_hash: string;
  status: 'active' | 'disabled';
  created_at: number;
}

export interface RoleTable {
  id: string;
  tenant_id: string;
  name: string;
  description: string;
  created_at: number;
}

/** One permission: an action on a resource. `*` in either column matches any. */
export interface RolePermissionTable {
  role_id: string;
  resource: string;
  action: string;
}

export interface UserRoleTable {
  user_id: string;
  role_id: string;
}

export interface ClientRoleTable {
  client_id: string;
  role_id: string;
}

/**
 * OAuth clients. `kind` is `agent` (a non-human principal with roles), `application` (an app that
 * signs people in), `admin` (a client allowed the admin scope) or `registered` (a client that
 * registered itself and may do nothing until an administrator makes it an agent).
 */
export interface ClientTable {
  client_id: string;
  tenant_id: string;
  kind: 'agent' | 'application' | 'admin' | 'registered';
  name: string;
  owner_user_id: string | null;
  /** `none` marks a public client (RFC 6749 §2.1), which only self-registered clients can be. */
  token_endpoint_auth_method: 'client_secret_basic' | 'private_key_jwt' | 'none';
  /** Hex SHA-256 digest of the client secret; null for private_key_jwt and public clients. */
  secret_digest: string | null;
  /** JSON text of the client's public JWK Set; null for secret clients. */
  jwks: string | null;
  /** JSON array of exact redirect URIs. */
  redirect_uris: string;
  status: 'active' | 'disabled';
  created_at: number;
  /** 1 when the token endpoint rejects this client's requests without a DPoP proof (RFC 9449 §5); null or 0 otherwise. */
  require_dpop?: number | null;
  /** Origin of a self-registered client: `dynamic` (RFC 7591) or `metadata_document` (its client_id is the document URL); null for clients an administrator created. */
  registration?: 'dynamic' | 'metadata_document' | null;
  /** Unix time after which a metadata document client's stored metadata must be fetched again. */
  metadata_expires_at?: number | null;
  /** JSON array of the grant types a self-registered client registered (RFC 7591 §2); null allows every grant of its kind. */
  grant_types?: string | null;
  /** JSON array of the exact URIs the logout endpoint may send the browser to (RP-Initiated Logout 1.0 §3.1); null when none are registered. */
  post_logout_redirect_uris?: string | null;
  /** CIBA Core 1.0 §4: how the agent learns that a backchannel request was decided; null means `poll`. */
  backchannel_token_delivery_mode?: 'poll' | 'ping' | null;
  /** CIBA Core 1.0 §4: the URL Mandate POSTs `{auth_req_id}` to in ping mode; null in poll mode. */
  backchannel_client_notification_endpoint?: string | null;
}

export interface ResourceTable {
  id: string;
  tenant_id: string;
  /** Short name used in gateway paths and CLI commands. */
  name: string;
  /** Absolute URI: the token audience (RFC 8707 resource indicator). */
  identifier: string;
  display_name: string;
  access_token_ttl_seconds: number;
  /** Base URL of the upstream the gateway forwards to; null for APIs that verify tokens themselves. */
  upstream_base_url: string | null;
  /** Injection method of the gateway: `bearer` or `header:<Name>`. */
  upstream_auth: string | null;
  created_at: number;
}

/** An action (scope) of a resource, with the requests it covers in the gateway. */
export interface ResourceActionTable {
  resource_id: string;
  name: string;
  description: string;
  /** HTTP method the gateway maps to this action, or `*`. */
  method: string;
  /** Path prefix under the upstream base URL, starting with `/`. */
  path_prefix: string;
  requires_approval: number;
  /** JSON object of the typed arguments the action declares for policies (name → `String`, `Long` or `Boolean`), or null for none. */
  arguments?: string | null;
}

export interface DelegationTable {
  id: string;
  tenant_id: string;
  user_id: string;
  client_id: string;
  resource_id: string;
  /** Space-separated scopes the person consented to. */
  scope: string;
  source: 'consent' | 'token_exchange' | 'ciba';
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  revoked_reason: string | null;
  /** The delegation a chained token exchange narrowed; revoking it ends this one too. */
  parent_delegation_id?: string | null;
}

export interface AuthorizationCodeTable {
  code_hash: string;
  tenant_id: string;
  client_id: string;
  user_id: string;
  delegation_id: string;
  redirect_uri: string;
  code_challenge: string;
  scope: string;
  resource_id: string;
  nonce: string | null;
  openid: number;
  auth_time: number;
  expires_at: number;
  used_at: number | null;
  /** RFC 9449 §10: thumbprint of the DPoP key that must redeem this code, from the `dpop_jkt` parameter. */
  dpop_jkt?: string | null;
}

export interface RefreshTokenTable {
  id: string;
  token_hash: string;
  family_id: string;
  tenant_id: string;
  client_id: string;
  user_id: string;
  delegation_id: string;
  resource_id: string;
  scope: string;
  created_at: number;
  idle_expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
  /** RFC 9449 §5: thumbprint of the DPoP key this refresh token is bound to; null when unbound. */
  dpop_jkt?: string | null;
}

export interface SessionTable {
  id_hash: string;
  tenant_id: string;
  user_id: string;
  csrf_secret: string;
  auth_time: number;
  expires_at: number;
}

export interface ApprovalTable {
  id: string;
  tenant_id: string;
  delegation_id: string;
  user_id: string;
  client_id: string;
  resource_id: string;
  action: string;
  method: string;
  path: string;
  /** Hex SHA-256 of the arguments: the RFC 8785 canonical form of a JSON body, or the bytes of any other body. */
  body_hash: string;
  /** JWE of the start of the request body and its content type, shown on the approval page. */
  body_preview: string | null;
  /** Hex SHA-256 of the canonical binding (person, agent, resource, audience, action, method, path, arguments). */
  binding_hash: string;
  status: 'pending' | 'approved' | 'denied' | 'used';
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  used_at: number | null;
}

/** A person's credential at an upstream, encrypted as a JWE (a data key per record, wrapped by the master key). */
export interface ConnectionTable {
  id: string;
  tenant_id: string;
  user_id: string;
  resource_id: string;
  ciphertext: string;
  created_at: number;
  updated_at: number;
}

export interface SigningKeyTable {
  kid: string;
  /** `access_token` keys sign access tokens, `id_token` keys sign ID tokens. */
  purpose: 'access_token' | 'id_token';
  alg: string;
  public_jwk: string;
  /** JWE of the private JWK, encrypted under the master key. */
  private_jwk_encrypted: string;
  status: 'active' | 'retired';
  created_at: number;
}

/** `jti` values of client assertions seen, kept until they expire (RFC 7523 §3 item 7). */
export interface ClientAssertionIdTable {
  client_id: string;
  jti: string;
  expires_at: number;
}

export interface AuditLogTable {
  seq: number;
  tenant_id: string;
  created_at: number;
  /** JSON text of the entry as hashed (RFC 8785 canonical form). */
  entry: string;
  /** Hex SHA-256 over the previous hash and the entry. */
  hash: string;
  prev_hash: string;
}

/** One row: the sequence number and hash of the newest audit entry, locked while appending. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}


/** `jti` values of DPoP proofs seen, per key, kept until the proof leaves the acceptance window (RFC 9449 §11.1). */
export interface DpopProofTable {
  /** RFC 7638 thumbprint of the proof's key. */
  jkt: string;
  jti: string;
  expires_at: number;
}

/** An access token revoked before it expired (RFC 7009), by its `jti`; the row can go once `expires_at` has passed. */
export interface RevokedAccessTokenTable {
  jti: string;
  tenant_id: string;
  /** The client the token was issued to, which revoked it. */
  client_id: string;
  expires_at: number;
  revoked_at: number;
}

/** An authorization request pushed to the PAR endpoint (RFC 9126), used once at /authorize. */
export interface PushedAuthorizationRequestTable {
  /** Hex SHA-256 of the `request_uri`. */
  request_uri_hash: string;
  tenant_id: string;
  client_id: string;
  /** JSON object of the pushed parameters; a repeated parameter is an array. */
  parameters: string;
  expires_at: number;
  used_at: number | null;
}

/** Self-registration settings of a tenant, set by the administrator. Booleans are 0 or 1. */
export interface RegistrationPolicyTable {
  tenant_id: string;
  /** RFC 7591 registration at /register. */
  dynamic_registration: number;
  /** client_id URLs resolved by fetching their client ID metadata document. */
  metadata_documents: number;
  /** JSON array of the host names metadata documents may come from; empty allows any public host. */
  metadata_document_hosts: string;
  updated_at: number;
}

/** One saved version of a tenant's Cedar policy. The highest version is in force. */
export interface PolicyTable {
  tenant_id: string;
  /** 1 for the first saved policy. A tenant without rows is at version 0, with no policy. */
  version: number;
  /** Cedar policy text as the administrator saved it. */
  source: string;
  created_at: number;
  /** Audit actor that saved it (an admin client id or `cli:<account>`). */
  created_by: string;
}

/**
 * A CIBA backchannel authentication request (CIBA Core 1.0 §7): an agent requests, ahead of
 * time, a person's approval of one action or a set of scopes. `status` moves from `pending` to
 * `approved` or `denied`, and from `approved` to `issued` when the agent redeems `auth_req_id`.
 */
export interface CibaRequestTable {
  /** Public id of the request, used in the person's page URL and in audit entries; not the `auth_req_id`. */
  id: string;
  tenant_id: string;
  /** Hex SHA-256 of the `auth_req_id`; only the agent has the `auth_req_id` itself. */
  auth_req_id_hash: string;
  client_id: string;
  user_id: string;
  /** The resource every requested action belongs to; the issued token's audience. */
  resource_id: string;
  /** Space-separated scope as granted at request time: OpenID Connect scopes and resource actions. */
  scope: string;
  /** RFC 8785 canonical JSON of the RFC 9396 `authorization_details` array; null when none were requested. */
  authorization_details: string | null;
  binding_message: string | null;
  delivery_mode: 'poll' | 'ping';
  /**
   * Ping mode: JWE of the `auth_req_id` and `client_notification_token` that the notification
   * carries (CIBA §10.2), sealed under the master key. It is null in poll mode and once delivered.
   */
  ping_secrets: string | null;
  status: 'pending' | 'approved' | 'denied' | 'issued';
  created_at: number;
  expires_at: number;
  /** Minimum seconds between two token requests; `slow_down` adds 5. */
  interval_seconds: number;
  /** Unix time in milliseconds of the last token request, for `slow_down`; null before the first. */
  polled_at_ms: number | null;
  decided_at: number | null;
  /** Sign-in time of the person's session when they approved: the ID token's `auth_time`. */
  auth_time: number | null;
  /** The delegation recorded when the person approved; the issued access token names it. */
  delegation_id: string | null;
  issued_at: number | null;
  /** When the gateway counted this approval for a call that needs the person's approval; it counts once. */
  approval_used_at: number | null;
}
