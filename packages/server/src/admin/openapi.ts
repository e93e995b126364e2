import { z } from 'zod';
import { ADMIN_SCOPE } from './admin-scope.ts';
import type { AdminOperation } from './api.ts';

type JsonSchema = Record<string, unknown>;

const PROBLEM_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    'invalid-params': { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, reason: { type: 'string' } } } },
  },
  required: ['type', 'title', 'status', 'detail'],
};

const ERROR_RESPONSES: Record<string, string> = {
  '400': 'Invalid input; `invalid-params` names each field and the reason',
  '401': 'Missing or invalid access token',
  '403': `The access token lacks the ${ADMIN_SCOPE} scope`,
  '404': 'A record named in the path was not found',
  '409': 'A record with the same unique name already exists',
};

/** Builds the OpenAPI 3.1 document of the admin API from the zod schemas that validate its input. */
export function buildOpenApiDocument(issuer: string, prefix: string, operations: AdminOperation[]): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const operation of operations) {
    const path = prefix + operation.path.replace(/:([A-Za-z_]+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][operation.method.toLowerCase()] = describeOperation(operation);
  }

  return {
    openapi: '3.1.0',
    info: { title: 'Mandate admin API', version: '1' },
    servers: [{ url: issuer }],
    security: [{ adminToken: [ADMIN_SCOPE] }],
    paths,
    components: {
      schemas: { Problem: PROBLEM_SCHEMA },
      securitySchemes: {
        adminToken: {
          type: 'oauth2',
          description: `An access token from client_credentials with resource=${issuer}/admin, sent as a Bearer token`,
          flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes: { [ADMIN_SCOPE]: 'Manage users, agents, resources, delegations and the audit log' } } },
        },
      },
    },
  };
}

function describeOperation(operation: AdminOperation): JsonSchema {
  const parameters = [...pathParameters(operation.path), ...queryParameters(operation.query)];
  const responses: Record<string, unknown> = { [String(operation.status)]: { description: operation.status === 201 ? 'Created' : 'OK', content: { 'application/json': {} } } };
  for (const [status, description] of Object.entries(ERROR_RESPONSES)) {
    responses[status] = { description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
  }

  return {
    operationId: operation.operationId,
    summary: operation.summary,
    tags: [operation.tag],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(operation.body === undefined ? {} : { requestBody: { required: operation.method !== 'POST' || operation.status === 201, content: { 'application/json': { schema: jsonSchemaOf(operation.body) } } } }),
    responses,
  };
}

function pathParameters(path: string): JsonSchema[] {
  return [...path.matchAll(/:([A-Za-z_]+)/g)].map((match) => ({ name: match[1], in: 'path', required: true, schema: { type: 'string' } }));
}

function queryParameters(schema: z.ZodType | undefined): JsonSchema[] {
  if (schema === undefined) return [];

  const json = jsonSchemaOf(schema);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({ name, in: 'query', required: required.has(name), schema: property, ...(typeof property.description === 'string' ? { description: property.description } : {}) }));
}

function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return json;
}
