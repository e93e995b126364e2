import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../oauth/errors.ts';
import { Problem } from './problem.ts';

const ADMIN_PREFIX = '/admin/';

/**
 * Maps every error to its response, in this one place. OAuth errors become RFC 6749 JSON, admin errors
 * RFC 9457 problems, Fastify's own request errors (bad JSON, wrong content type, body too
 * large) the protocol's invalid_request, and anything else a generic server_error with the
 * detail only in the log.
 */
export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const isAdmin = request.url.startsWith(ADMIN_PREFIX);

  if (error instanceof OAuthError) {
    request.log.info({ err: { error: error.error, detail: error.message } }, 'request rejected');
    return reply.code(error.status).headers({ ...error.headers, 'cache-control': 'no-store' }).type('application/json').send(error.toJSON());
  }

  if (error instanceof Problem) {
    request.log.info({ err: { title: error.title, detail: error.detail } }, 'admin request rejected');
    return reply.code(error.status).type('application/problem+json').send(error.toJSON());
  }

  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const detail = publicRequestError(error as FastifyError);
    request.log.info({ err: { code: (error as FastifyError).code, detail: loggedDetail(error as FastifyError, detail) } }, 'malformed request');
    if (isAdmin) return reply.code(status).type('application/problem+json').send(new Problem(status, 'Bad Request', detail).toJSON());
    if (status === 429) return reply.code(429).send({ error: 'slow_down', error_description: 'Too many requests; wait a minute and try again.' });
    return reply.code(status).send({ error: 'invalid_request', error_description: detail });
  }

  request.log.error({ err: error }, 'unexpected error');
  if (isAdmin) return reply.code(500).type('application/problem+json').send(new Problem(500, 'Internal Server Error', 'The server failed to handle the request; the log has the details.').toJSON());
  return reply.code(500).send({ error: 'server_error', error_description: 'The server failed to handle the request.' });
}

/**
 * Returns the detail of a malformed request for the log. The router's URL errors quote the whole
 * request URL, query included, so they are logged with the public detail instead: the request
 * log line already has the URL, with credential parameters redacted.
 */
function loggedDetail(error: FastifyError, publicDetail: string): string {
  return error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? publicDetail : error.message;
}

function publicRequestError(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'The request content type is not supported by this endpoint.';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The request body is empty but its content type is JSON.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The request body is too large.';
    case 'FST_ERR_BAD_URL':
      return 'The request path contains malformed percent-encoding.';
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return 'A path parameter of the request is too long.';
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'The Content-Length header does not match the body.';
    default:
      if (error instanceof SyntaxError) return 'The request body is not valid JSON.';
      if (error.statusCode === 404) return 'Not found.';
      if (error.statusCode === 403) return 'The form is missing its CSRF token or the token is invalid; reload the page and try again.';
      return 'The request is malformed.';
  }
}
