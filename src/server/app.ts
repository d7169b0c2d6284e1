import crypto from 'node:crypto';
import fs from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { AuditLog } from '../audit/audit-log.js';
import { adminAuth } from '../auth/plugin.js';
import { OidcVerifier } from '../auth/oidc.js';
import { graphErrorHandler } from '../graph/error-handler.js';
import { errorBody, GraphError } from '../graph/errors.js';
import { normalizeGraphUrl } from '../graph/url.js';
import { JobScheduler } from '../jobs/scheduler.js';
import { createLogger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import type { Keyring } from '../secrets/keyring.js';
import { SecretStore } from '../secrets/secret-store.js';
import type { Store } from '../store/db.js';
import { systemClock, type Clock } from '../shared/time.js';
import { healthRoutes } from './health.js';
import { storeRateLimitClass } from './rate-limit-store.js';
import type { Core, OpenEnrollModule } from './module.js';
import { createModules } from './modules.js';

export { createLogger };

export interface AppOptions {
  config: Config;
  store: Store;
  keyring: Keyring;
  clock?: Clock;
  logger?: Logger;
  metrics?: Metrics;
  /** Extra modules (tests, simulators mounted in-process). */
  extraModules?: (core: Core) => OpenEnrollModule[];
}

export interface App {
  server: FastifyInstance;
  core: Core;
  modules: OpenEnrollModule[];
  /** Every route as registered (method and URL pattern), for the route-wide security tests and docs. */
  routes: readonly { method: string; url: string }[];
  /** Starts background work (jobs, module start hooks). */
  startBackground(): Promise<void>;
  /** Graceful stop: in-flight requests finish, jobs release leases, the store closes. */
  close(): Promise<void>;
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const { config, store, keyring } = opts;
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = opts.metrics ?? new Metrics();
  const jobs = new JobScheduler(store, {
    leaseMs: config.jobs.leaseMs,
    pollIntervalMs: config.jobs.pollIntervalMs,
    clock,
    logger: logger.child({ component: 'jobs' }),
    onRun: (kind, result, ms) => {
      metrics.jobRuns.inc({ kind, result });
      metrics.jobDuration.observe({ kind }, ms / 1000);
    },
  });
  const core: Core = {
    config,
    store,
    clock,
    keyring,
    secrets: new SecretStore(keyring, () => clock.now()),
    audit: new AuditLog(clock),
    jobs,
    logger,
    metrics,
  };
  const modules = [...createModules(core), ...(opts.extraModules?.(core) ?? [])];

  const errorHandler = graphErrorHandler(config.bodyLimitBytes);
  const https = config.tls ? { cert: fs.readFileSync(config.tls.certFile), key: fs.readFileSync(config.tls.keyFile) } : null;
  const server = Fastify({
    https,
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => crypto.randomUUID(),
    requestIdHeader: false,
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    rewriteUrl: (req) => normalizeGraphUrl(req.url ?? '/'),
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    // Malformed URLs and over-long segments get the Graph envelope too, not Fastify's own body.
    frameworkErrors: (err, req, reply) => errorHandler(err, req, reply),
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, strict: false },
    },
  });
  server.decorate('publicUrl', config.publicUrl);

  server.setErrorHandler(errorHandler);
  server.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    const err = new GraphError(404, 'ResourceNotFound', `Resource not found for the segment '${path.split('/').filter(Boolean).pop() ?? '/'}'.`);
    const crid = req.headers['client-request-id'];
    return reply.code(404).send(errorBody(err, req.id, typeof crid === 'string' ? crid : undefined));
  });

  const routes: { method: string; url: string }[] = [];
  server.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method: String(method), url: r.url });
  });

  server.addHook('onRequest', async (req, reply) => {
    reply.header('request-id', req.id);
    const crid = req.headers['client-request-id'];
    reply.header('client-request-id', typeof crid === 'string' ? crid : req.id);
  });
  server.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  await server.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'OpenEnroll admin API',
        version: '0.1.0',
        description: 'Microsoft Graph-compatible device enrollment administration. Authenticate with "Authorization: Bearer <API key or OIDC token>".',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await server.register(swaggerUi, { routePrefix: '/docs' });
  server.get('/openapi.json', { schema: { hide: true } }, async () => server.swagger());

  await server.register(healthRoutes, { store, metrics, metricsToken: config.metricsToken });

  const oidc = config.oidc ? new OidcVerifier(config.oidc) : undefined;
  await server.register(async (admin) => {
    await admin.register(adminAuth, { store, clock, oidc });
    // The admin API speaks JSON; a text/plain body is a 415, not a string for the schema to reject.
    admin.removeContentTypeParser('text/plain');
    // Graph takes an empty body labelled application/json (curl scripts send that on DELETE and on
    // parameterless actions); routes that need a body still refuse undefined through their schema.
    const parseJson = admin.getDefaultJsonParser('error', 'error');
    admin.removeContentTypeParser('application/json');
    admin.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
      if (body.length === 0) {
        done(null, undefined);
        return;
      }
      parseJson(req, body.toString(), done);
    });
    await admin.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max: config.rateLimit.max,
      timeWindow: config.rateLimit.windowMs,
      keyGenerator: (req) => req.principal?.id ?? req.ip,
      // Nodes sharing PostgreSQL, and cluster workers sharing either store, count one budget per
      // credential in the store; a single process on embedded SQLite counts in memory.
      ...(store.dialect === 'postgres' || config.workers > 1 ? { store: storeRateLimitClass(store, clock, config.rateLimit.windowMs) } : {}),
      errorResponseBuilder: (_req, ctx) =>
        new GraphError(429, 'TooManyRequests', `Rate limit of ${ctx.max} requests per ${ctx.after} exceeded; retry later.`, {
          retryAfterSeconds: Math.max(1, Math.ceil(ctx.ttl / 1000)),
        }),
    });
    for (const m of modules) {
      for (const r of m.adminRoutes ?? []) {
        for (const v of r.versions) await admin.register(r.plugin, { prefix: `/${v}` });
      }
    }
  });
  for (const m of modules) {
    if (m.deviceRoutes) await server.register(m.deviceRoutes);
  }
  await server.ready();

  let closing: Promise<void> | undefined;
  return {
    server,
    core,
    modules,
    routes,
    async startBackground() {
      for (const m of modules) await m.start?.();
      if (config.jobs.enabled) jobs.start();
    },
    close() {
      closing ??= (async () => {
        await server.close();
        await jobs.stop(config.shutdownGraceMs);
        for (const m of [...modules].reverse()) await m.stop?.();
        await store.close();
      })();
      return closing;
    },
  };
}
