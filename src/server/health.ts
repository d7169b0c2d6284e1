import crypto from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/db.js';

/**
 * Operational endpoints, outside the admin API:
 * /healthz: the process is up; /readyz: the store answers; /metrics: Prometheus text
 * (behind a bearer token when OPENENROLL_METRICS_TOKEN is set).
 */
export const healthRoutes: FastifyPluginAsync<{ store: Store; metrics: Metrics; metricsToken: string | undefined }> = async (app, opts) => {
  const hide = { hide: true };
  app.get('/healthz', { schema: hide, logLevel: 'warn' }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: hide, logLevel: 'warn' }, async (_req, reply) => {
    const ok = await opts.store.ping(2000);
    opts.metrics.storeUp.set(ok ? 1 : 0);
    if (!ok) reply.header('Retry-After', '5');
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'store unavailable' });
  });
  app.get('/metrics', { schema: hide, logLevel: 'warn' }, async (req, reply) => {
    if (opts.metricsToken) {
      const presented = Buffer.from(req.headers.authorization ?? '');
      const expected = Buffer.from(`Bearer ${opts.metricsToken}`);
      if (presented.length !== expected.length || !crypto.timingSafeEqual(presented, expected)) {
        return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: { code: 'Unauthorized', message: 'A metrics token is required.' } });
      }
    }
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
};
