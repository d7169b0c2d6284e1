import { describe, expect, it } from 'vitest';
import { toGraphError, validationMessage } from '../../src/graph/error-handler.js';
import { badRequest, conflict, errorBody, forbidden, GraphError, graphErrorDate, invalidProperty, notFound, serviceUnavailable, tooManyRequests, unauthorized } from '../../src/graph/errors.js';
import { idFromODataRef } from '../../src/graph/schemas.js';

const LIMIT = 2048;
const fastifyError = (code: string, statusCode: number) => Object.assign(new Error(`fastify says ${code}`), { code, statusCode });

describe('error constructors and the envelope', () => {
  it('give Graph status codes and codes', () => {
    expect([badRequest('x'), unauthorized(), forbidden(), notFound(), conflict('x'), tooManyRequests('x', 3), serviceUnavailable('x')].map((e) => [e.statusCode, e.code])).toEqual([
      [400, 'BadRequest'],
      [401, 'Unauthorized'],
      [403, 'Forbidden'],
      [404, 'ResourceNotFound'],
      [409, 'Conflict'],
      [429, 'TooManyRequests'],
      [503, 'ServiceUnavailable'],
    ]);
    expect(tooManyRequests('x', 7).options.retryAfterSeconds).toBe(7);
    expect(invalidProperty('displayName', 'too long')).toMatchObject({ statusCode: 400, message: "Invalid value for property 'displayName': too long", options: { target: 'displayName' } });
  });

  it('writes innerError.date without fraction or zone, and falls back to the request id', () => {
    expect(graphErrorDate(new Date('2023-02-26T22:47:17.123Z'))).toBe('2023-02-26T22:47:17');
    expect(errorBody(conflict('busy', 'state'), 'rid', undefined, new Date('2023-02-26T22:47:17.999Z'))).toEqual({
      error: { code: 'Conflict', message: 'busy', target: 'state', innerError: { date: '2023-02-26T22:47:17', 'request-id': 'rid', 'client-request-id': 'rid' } },
    });
    expect(errorBody(notFound(), 'rid', 'crid').error).not.toHaveProperty('target');
    expect(errorBody(notFound(), 'rid', 'crid').error.innerError['client-request-id']).toBe('crid');
  });
});

describe('toGraphError', () => {
  it('passes GraphErrors through', () => {
    const e = conflict('x');
    expect(toGraphError(e, LIMIT)).toBe(e);
  });

  it.each([
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 413, 'RequestEntityTooLarge'],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 400, 'BadRequest'],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 400, 'BadRequest'],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 415, 'UnsupportedMediaType'],
    ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 400, 'BadRequest'],
    ['FST_ERR_BAD_URL', 400, 400, 'BadRequest'],
    ['FST_ERR_MAX_PARAM_LENGTH', 414, 414, 'RequestUriTooLong'],
    ['SOME_PLUGIN_403', 403, 403, 'Forbidden'],
    ['SOME_PLUGIN_405', 405, 405, 'MethodNotAllowed'],
    ['SOME_PLUGIN_418', 418, 418, 'BadRequest'],
    ['SOME_PLUGIN_429', 429, 429, 'TooManyRequests'],
  ])('maps %s (%i) to %i %s', (code, status, expectedStatus, expectedCode) => {
    const ge = toGraphError(fastifyError(code, status), LIMIT);
    expect([ge.statusCode, ge.code]).toEqual([expectedStatus, expectedCode]);
    expect(ge.message).not.toContain('fastify says'); // our words, not the framework's
  });

  it('names the body limit in a 413', () => {
    expect(toGraphError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), LIMIT).message).toContain('2048 bytes');
  });

  it('answers 503 with Retry-After for an unreachable store', () => {
    for (const err of [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), new Error('driver has already been destroyed'), Object.assign(new Error('terminating'), { code: '57P01' })]) {
      const ge = toGraphError(err, LIMIT);
      expect([ge.statusCode, ge.code, ge.options.retryAfterSeconds]).toEqual([503, 'ServiceUnavailable', 5]);
    }
  });

  it('hides everything about other errors behind a generic 500', () => {
    for (const err of [new Error('password=hunter2'), new TypeError("Cannot read properties of undefined (reading 'x')"), 'a string', null, Object.assign(new Error('x'), { statusCode: 502 })]) {
      const ge = toGraphError(err, LIMIT);
      expect([ge.statusCode, ge.code]).toEqual([500, 'InternalError']);
      expect(ge.message).toBe('An internal error occurred. Use the request-id to find it in the server log.');
    }
  });
});

describe('validationMessage names the property', () => {
  const one = (keyword: string, instancePath: string, params: Record<string, unknown>, message?: string) => [{ keyword, instancePath, params, message }];

  it.each([
    [one('additionalProperties', '', { additionalProperty: 'colour' }), 'body', "Property 'colour' is not a known property of this resource.", 'colour'],
    [one('additionalProperties', '/settings/inner', { additionalProperty: 'x' }), 'body', "Property 'settings.inner.x' is not a known property of this resource.", 'settings.inner.x'],
    [one('required', '', { missingProperty: 'displayName' }), 'body', "Property 'displayName' is required.", 'displayName'],
    [one('type', '/displayName', { type: 'string' }), 'body', "Invalid value for property 'displayName': must be string.", 'displayName'],
    [one('type', '', { type: 'object' }), 'body', 'The request body must be a JSON object.', undefined],
    [one('enum', '/state', { allowedValues: ['a', 'b'] }), 'body', "Invalid value for property 'state': must be one of 'a', 'b'.", 'state'],
    [one('maxLength', '/displayName', { limit: 128 }, 'must NOT have more than 128 characters'), 'body', "Invalid value for property 'displayName': must NOT have more than 128 characters.", 'displayName'],
    [one('maxLength', '/id', { limit: 200 }, 'must NOT have more than 200 characters'), 'params', "Invalid value for path segment 'id': must NOT have more than 200 characters.", 'id'],
    [one('type', '/$top', { type: 'string' }), 'querystring', "Query option '$top' was specified more than once.", '$top'],
    [one('type', '/a~1b', { type: 'string' }), 'body', "Invalid value for property 'a/b': must be string.", 'a/b'],
    [[], 'body', 'The request is invalid.', undefined],
  ])('%#', (errors, context, message, target) => {
    expect(validationMessage(errors, context)).toEqual(target === undefined ? { message } : { message, target });
  });
});

describe('idFromODataRef', () => {
  it.each([
    ['https://graph.microsoft.com/v1.0/directoryObjects/abc', 'abc'],
    ['https://graph.microsoft.com/v1.0/directoryObjects/abc/', 'abc'],
    ["https://graph.microsoft.com/v1.0/users('abc')", 'abc'],
    ['https://graph.microsoft.com/v1.0/users(abc)', 'abc'],
    ["https://graph.microsoft.com/v1.0/users('O''Brien')", "O'Brien"],
    ['https://graph.microsoft.com/v1.0/users(%27O%27%27Brien%27)', "O'Brien"],
    ["https://graph.microsoft.com/v1.0/users('a/b')", 'a/b'],
    ['https://graph.microsoft.com/v1.0/users/john%40contoso.com', 'john@contoso.com'],
    ['https://graph.microsoft.com/beta/deviceManagement/deviceCategories/1f2e', '1f2e'],
    ['https://x/users/%E0%A4%A', undefined],
    ['no-slash', undefined],
  ])('%s -> %s', (ref, id) => {
    expect(idFromODataRef(ref)).toBe(id);
  });
});

it('GraphError is an Error with a name', () => {
  const e = new GraphError(400, 'BadRequest', 'm');
  expect(e).toBeInstanceOf(Error);
  expect(e.name).toBe('GraphError');
});
