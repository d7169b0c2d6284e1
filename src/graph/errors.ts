/**
 * Graph's error envelope, and the one place that turns any failure into it.
 * {"error":{"code","message","target"?, "innerError":{"date","request-id","client-request-id"}}}
 */

export interface GraphErrorBody {
  error: {
    code: string;
    message: string;
    target?: string;
    details?: { code: string; message: string; target?: string }[];
    innerError: { date: string; 'request-id': string; 'client-request-id': string };
  };
}

export class GraphError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly options: { target?: string; retryAfterSeconds?: number; details?: { code: string; message: string; target?: string }[] } = {},
  ) {
    super(message);
    this.name = 'GraphError';
  }
}

export const badRequest = (message: string, target?: string) =>
  new GraphError(400, 'BadRequest', message, target ? { target } : {});
export const invalidProperty = (property: string, problem: string) =>
  new GraphError(400, 'BadRequest', `Invalid value for property '${property}': ${problem}`, { target: property });
export const unauthorized = (message = 'Access token is missing or invalid.') =>
  new GraphError(401, 'Unauthorized', message);
export const forbidden = (message = 'The caller is not authorized to perform this operation.') =>
  new GraphError(403, 'Forbidden', message);
export const notFound = (message = 'The requested resource does not exist.') =>
  new GraphError(404, 'ResourceNotFound', message);
export const conflict = (message: string, target?: string) =>
  new GraphError(409, 'Conflict', message, target ? { target } : {});
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new GraphError(429, 'TooManyRequests', message, { retryAfterSeconds });
export const serviceUnavailable = (message: string, retryAfterSeconds = 5) =>
  new GraphError(503, 'ServiceUnavailable', message, { retryAfterSeconds });

/** Graph writes innerError.date without fraction or zone: 2023-02-26T22:47:17 */
export function graphErrorDate(d = new Date()): string {
  return d.toISOString().slice(0, 19);
}

export function errorBody(
  err: GraphError,
  requestId: string,
  clientRequestId: string | undefined,
  now = new Date(),
): GraphErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.options.target ? { target: err.options.target } : {}),
      ...(err.options.details ? { details: err.options.details } : {}),
      innerError: {
        date: graphErrorDate(now),
        'request-id': requestId,
        'client-request-id': clientRequestId ?? requestId,
      },
    },
  };
}
