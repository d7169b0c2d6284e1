import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Store } from '../store/db.js';
import { forbidden, GraphError, serviceUnavailable, unauthorized } from '../graph/errors.js';
import { isApiKeyToken, verifyApiKey } from './api-keys.js';
import { OidcUnavailableError, type OidcVerification, type OidcVerifier } from './oidc.js';
import { hasPermission } from './principal.js';
import type { Clock } from '../shared/time.js';

/**
 * Admin API authentication and authorization, applied to the encapsulated admin scope:
 * - every route must declare `config.permission` (checked when the route is added, so a route
 *   without an authorization rule can't exist);
 * - every request needs a bearer API key or OIDC JWT;
 * - the principal's role must grant the permission. This is checked in onRequest, before the
 *   body is parsed or validated, so a caller without the permission learns nothing from it.
 */
export interface AdminAuthOptions {
  store: Store;
  clock: Clock;
  oidc?: OidcVerifier | undefined;
}

const REALM = 'Bearer realm="OpenEnroll"';

/** A 401 for a presented but unusable token (RFC 6750 §3.1 error="invalid_token"). */
class InvalidToken extends GraphError {
  constructor(message: string) {
    super(401, 'Unauthorized', message);
  }
}

async function authenticate(req: FastifyRequest, opts: AdminAuthOptions): Promise<void> {
  const header = req.headers.authorization;
  if (!header) throw unauthorized('Access token is empty.');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw unauthorized('The Authorization header must be "Bearer <token>".');
  const token = m[1]!;
  if (isApiKeyToken(token)) {
    const principal = await verifyApiKey(opts.store.db, token, opts.clock.now());
    if (!principal) throw new InvalidToken('The API key is invalid, expired or revoked.');
    req.principal = { ...principal, ipAddress: req.ip };
    return;
  }
  if (opts.oidc && token.split('.').length === 3) {
    let result: OidcVerification;
    try {
      result = await opts.oidc.verify(token);
    } catch (err) {
      if (err instanceof OidcUnavailableError) {
        req.log.warn({ err: err.message }, 'OIDC issuer unavailable');
        throw serviceUnavailable('The identity provider could not be reached to check the access token; retry shortly.');
      }
      throw err;
    }
    if (!result.ok) throw new InvalidToken(`The access token was refused: ${result.reason}.`);
    const principal = await opts.oidc.principalFor(opts.store.db, result.payload);
    if ('error' in principal) throw forbidden(`The access token can't be used here: ${principal.error}.`);
    req.principal = { ...principal, ipAddress: req.ip };
    return;
  }
  throw new InvalidToken(
    opts.oidc ? 'The access token is neither an OpenEnroll API key nor a JWT.' : 'The access token is not an OpenEnroll API key (no OIDC issuer is configured).',
  );
}

function authorize(req: FastifyRequest): void {
  const { permission, requireUnscoped } = req.routeOptions.config;
  const p = req.principal!;
  if (!permission || !hasPermission(p, permission)) {
    throw forbidden(`The role '${p.role}' does not grant '${permission ?? 'unknown'}' needed for this operation.`);
  }
  if (requireUnscoped && p.scopeTagIds !== null) {
    throw forbidden('This operation needs a principal that is not limited by scope tags.');
  }
}

const plugin: FastifyPluginAsync<AdminAuthOptions> = async (app, opts) => {
  app.addHook('onRoute', (route) => {
    if (!route.config?.permission) {
      throw new Error(`admin route ${String(route.method)} ${route.url} declares no permission`);
    }
  });
  app.addHook('onRequest', async (req, reply) => {
    try {
      await authenticate(req, opts);
    } catch (err) {
      if (err instanceof GraphError && err.statusCode === 401) {
        reply.header('WWW-Authenticate', err instanceof InvalidToken ? `${REALM}, error="invalid_token"` : REALM);
      }
      throw err;
    }
    authorize(req);
  });
};

export const adminAuth = fp(plugin, { name: 'openenroll-admin-auth' });
