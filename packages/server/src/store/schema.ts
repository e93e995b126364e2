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
 * signs people in) or `admin` (a client allowed the admin scope).
 */
export interface ClientTable {
  client_id: string;
  tenant_id: string;
  kind: 'agent' | 'application' | 'admin';
  name: string;
  owner_user_id: string | null;
  token_endpoint_auth_method: 'client_secret_basic' | 'private_key_jwt';
  /** Hex SHA-256 digest of the client secret; null for private_key_jwt clients. */
  secret_digest: string | null;
  /** JSON text of the client's public JWK Set; null for secret clients. */
  jwks: string | null;
  /** JSON array of exact redirect URIs. */
  redirect_uris: string;
  status: 'active' | 'disabled';
  created_at: number;
  /** 1 when the token endpoint rejects this client's requests without a DPoP proof (RFC 9449 §5); null or 0 otherwise. */
  require_dpop?: number | null;
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
}

export interface DelegationTable {
  id: string;
  tenant_id: string;
  user_id: string;
  client_id: string;
  resource_id: string;
  /** Space-separated scopes the person consented to. */
  scope: string;
  source: 'consent' | 'token_exchange';
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
  /** Hex SHA-256 of the request body. */
  body_hash: string;
  /** JWE of the start of the request body and its content type, shown on the approval page. */
  body_preview: string | null;
  /** Hex SHA-256 of the canonical binding (person, agent, resource, action, method, path, body hash). */
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
