import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Actor, Permission, Principal } from '../auth/principal.js';
import { GraphError, unauthorized } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** The permission a route needs. Every admin API route must declare one. */
    permission?: Permission;
    /** Reading the whole tenant's history (audit) needs an unscoped principal. */
    requireUnscoped?: boolean;
  }
  interface FastifyInstance {
    /** Absolute base URL for links, when configured; else derived per request. */
    publicUrl: string | undefined;
  }
}

export type ApiVersion = 'beta' | 'v1.0';

export function actorOf(req: FastifyRequest): Actor {
  if (!req.principal) throw unauthorized();
  const clientRequestId = req.headers['client-request-id'];
  return {
    tenantId: req.principal.tenantId,
    principal: req.principal,
    requestId: req.id,
    clientRequestId: typeof clientRequestId === 'string' ? clientRequestId : undefined,
  };
}

export function apiVersionOf(req: FastifyRequest): ApiVersion {
  return req.url.startsWith('/v1.0/') ? 'v1.0' : 'beta';
}

export function baseUrlOf(req: FastifyRequest): string {
  return req.server.publicUrl ?? `${req.protocol}://${req.host}`;
}

/** `https://host/beta/$metadata#users` */
export function contextUrl(req: FastifyRequest, fragment: string): string {
  return `${baseUrlOf(req)}/${apiVersionOf(req)}/$metadata#${fragment}`;
}

/** Absolute URL of a resource under the same API version, as Graph puts in @odata.id. */
export function resourceUrl(req: FastifyRequest, path: string): string {
  return `${baseUrlOf(req)}/${apiVersionOf(req)}/${path.replace(/^\/+/, '')}`;
}

/** An entity with its @odata.context and @odata.type. */
export function entityBody(req: FastifyRequest, contextFragment: string, typeName: string, entity: Record<string, unknown>) {
  return {
    '@odata.context': contextUrl(req, `${contextFragment}/$entity`),
    '@odata.type': `#${typeName}`,
    ...entity,
  };
}

export function sendEntity(
  reply: FastifyReply,
  req: FastifyRequest,
  contextFragment: string,
  typeName: string,
  entity: Record<string, unknown>,
  status = 200,
) {
  return reply.code(status).send(entityBody(req, contextFragment, typeName, entity));
}

/** A primitive function/action result: {"@odata.context":"…$metadata#Edm.String","value":…} */
export function primitiveBody(req: FastifyRequest, edmType: string, value: unknown) {
  return { '@odata.context': contextUrl(req, edmType), value };
}

/**
 * A CSV upload's check, as a route's preValidation hook: the file is the body, sent as text/csv.
 * Run before the body schema, so a JSON body is 415 rather than a schema error.
 */
export async function requireCsvBody(req: FastifyRequest): Promise<void> {
  const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'text/csv' || typeof req.body !== 'string') {
    throw new GraphError(415, 'UnsupportedMediaType', "Send the file as the request body with 'Content-Type: text/csv'.");
  }
}
