import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Store } from '../store/db.js';
import { forbidden, unauthorized } from '../graph/errors.js';
import { isApiKeyToken, verifyApiKey } from './api-keys.js';
import type { OidcVerifier } from './oidc.js';
import { hasPermission } from './principal.js';
import type { Clock } from '../shared/time.js';

/**
 * Admin API authentication and authorization, applied to the encapsulated admin scope:
 * - every route must declare `config.permission` (checked when the route is added, so a route
 *   without an authorization rule can't exist);
 * - every request needs a bearer API key or OIDC JWT;
 * - the principal's role must grant the permission.
 */
export interface AdminAuthOptions {
  store: Store;
  clock: Clock;
  oidc?: OidcVerifier | undefined;
}

async function authenticate(req: FastifyRequest, opts: AdminAuthOptions): Promise<void> {
  const header = req.headers.authorization;
  if (!header) throw unauthorized('Access token is empty.');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw unauthorized('The Authorization header must be "Bearer <token>".');
  const token = m[1]!;
  if (isApiKeyToken(token)) {
    const principal = await verifyApiKey(opts.store.db, token, opts.clock.now());
    if (!principal) throw unauthorized('The API key is invalid, expired or revoked.');
    req.principal = { ...principal, ipAddress: req.ip };
    return;
  }
  if (opts.oidc && token.split('.').length === 3) {
    const payload = await opts.oidc.verify(token);
    if (!payload) throw unauthorized('The access token is invalid or expired.');
    const principal = await opts.oidc.principalFor(opts.store.db, payload);
    if ('error' in principal) throw forbidden(`The access token can't be used here: ${principal.error}.`);
    req.principal = { ...principal, ipAddress: req.ip };
    return;
  }
  throw unauthorized('Access token validation failure.');
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
      reply.header('WWW-Authenticate', 'Bearer realm="OpenEnroll"');
      throw err;
    }
  });
  app.addHook('preHandler', async (req) => {
    const { permission, requireUnscoped } = req.routeOptions.config;
    const p = req.principal!;
    if (!permission || !hasPermission(p, permission)) {
      throw forbidden(`The role '${p.role}' does not grant '${permission ?? 'unknown'}' needed for this operation.`);
    }
    if (requireUnscoped && p.scopeTagIds !== null) {
      throw forbidden('This operation needs a principal that is not limited by scope tags.');
    }
  });
};

export const adminAuth = fp(plugin, { name: 'openenroll-admin-auth' });
