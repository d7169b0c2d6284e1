import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isStoreUnavailable } from '../store/db.js';
import { errorBody, GraphError } from './errors.js';

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

function propertyPath(instancePath: string): string {
  return instancePath.replace(/^\//, '').split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
}

/** Turns a schema validation failure into a message that names the property. */
export function validationMessage(errors: AjvError[], context: string | undefined): { message: string; target?: string } {
  const e = errors[0];
  if (!e) return { message: 'The request is invalid.' };
  const where = context === 'querystring' ? 'query parameter' : context === 'params' ? 'path segment' : 'property';
  const base = propertyPath(e.instancePath);
  const name = (leaf: string) => (base ? `${base}.${leaf}` : leaf);
  switch (e.keyword) {
    case 'additionalProperties': {
      const prop = name(String(e.params.additionalProperty));
      return { message: `Property '${prop}' is not a known property of this resource.`, target: prop };
    }
    case 'required': {
      const prop = name(String(e.params.missingProperty));
      return { message: `Property '${prop}' is required.`, target: prop };
    }
    case 'type':
      // The query parser gives strings, or an array when a parameter is repeated.
      if (context === 'querystring' && base && e.params.type === 'string') {
        return { message: `Query option '${base}' was specified more than once.`, target: base };
      }
      if (!base) return { message: context === 'body' || !context ? 'The request body must be a JSON object.' : `The ${where} is invalid.` };
      return { message: `Invalid value for ${where} '${base}': must be ${String(e.params.type)}.`, target: base };
    case 'enum':
      return {
        message: `Invalid value for ${where} '${base}': must be one of ${(e.params.allowedValues as unknown[]).map((v) => `'${String(v)}'`).join(', ')}.`,
        target: base,
      };
    default:
      return base
        ? { message: `Invalid value for ${where} '${base}': ${e.message ?? 'is invalid'}.`, target: base }
        : { message: `The request ${context ?? 'body'} is invalid: ${e.message ?? 'invalid'}.` };
  }
}

/** Codes for 4xx errors raised by Fastify or plugins rather than by our code. */
const CLIENT_ERROR_CODES: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'ResourceNotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  408: 'RequestTimeout',
  409: 'Conflict',
  413: 'RequestEntityTooLarge',
  414: 'RequestUriTooLong',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
};
const CLIENT_ERROR_MESSAGES: Record<number, string> = {
  429: 'Too many requests; retry after the time in Retry-After.',
};

const internalError = () => new GraphError(500, 'InternalError', 'An internal error occurred. Use the request-id to find it in the server log.');

/** Maps any error thrown while handling a request to a GraphError. */
export function toGraphError(err: unknown, bodyLimit: number): GraphError {
  if (err instanceof GraphError) return err;
  if (err === null || typeof err !== 'object') return internalError(); // `throw undefined` must not crash the handler
  const fe = err as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fe.validation) {
    const { message, target } = validationMessage(fe.validation, fe.validationContext);
    return new GraphError(400, 'BadRequest', message, target ? { target } : {});
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GraphError(413, 'RequestEntityTooLarge', `The request body is larger than the limit of ${bodyLimit} bytes.`);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new GraphError(400, 'BadRequest', 'The request body is not valid JSON.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GraphError(400, 'BadRequest', "The request body is empty but the content type is 'application/json'.");
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new GraphError(415, 'UnsupportedMediaType', 'The content type of the request body is not supported here.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GraphError(400, 'BadRequest', 'The request body does not match its Content-Length.');
    case 'FST_ERR_BAD_URL':
      return new GraphError(400, 'BadRequest', 'The request URL is not valid (malformed percent-encoding).');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new GraphError(414, 'RequestUriTooLong', 'A segment of the request URL is too long.');
    default:
      break;
  }
  if (err instanceof SyntaxError && fe.statusCode === 400) {
    return new GraphError(400, 'BadRequest', 'The request body is not valid JSON.');
  }
  if (isStoreUnavailable(err)) {
    return new GraphError(503, 'ServiceUnavailable', 'The data store is unavailable; retry shortly.', { retryAfterSeconds: 5 });
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new GraphError(fe.statusCode, CLIENT_ERROR_CODES[fe.statusCode] ?? 'BadRequest', CLIENT_ERROR_MESSAGES[fe.statusCode] ?? 'The request is invalid.');
  }
  return internalError();
}

export function graphErrorHandler(bodyLimit: number) {
  return function handler(this: unknown, err: unknown, req: FastifyRequest, reply: FastifyReply) {
    const ge = toGraphError(err, bodyLimit);
    // Router errors (bad URL) arrive before the onRequest hook that sets these.
    if (!reply.hasHeader('request-id')) reply.header('request-id', req.id);
    const crid = req.headers['client-request-id'];
    if (!reply.hasHeader('client-request-id')) reply.header('client-request-id', typeof crid === 'string' ? crid : req.id);
    if (ge.statusCode >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: ge.code, status: ge.statusCode, msg: ge.message }, 'request refused');
    if (ge.options.retryAfterSeconds !== undefined) reply.header('Retry-After', String(ge.options.retryAfterSeconds));
    return reply.code(ge.statusCode).type('application/json; charset=utf-8').send(errorBody(ge, req.id, typeof crid === 'string' ? crid : undefined));
  };
}
