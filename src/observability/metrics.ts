import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per server instance (several can live in one test process). It counts what its own
 * process did: with OPENENROLL_WORKERS each cluster worker has its own, labelled `worker`.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly jobRuns: Counter<'kind' | 'result'>;
  readonly jobDuration: Histogram<'kind'>;
  readonly storeUp: Gauge;

  /** `labels` go on every series of this registry (a cluster worker's `worker`). */
  constructor(opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}) {
    if (opts.labels) this.registry.setDefaultLabels(opts.labels);
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'openenroll_' });
    this.httpRequests = new Counter({
      name: 'openenroll_http_requests_total',
      help: 'HTTP requests by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.httpDuration = new Histogram({
      name: 'openenroll_http_request_duration_seconds',
      help: 'HTTP request latency by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    this.jobRuns = new Counter({
      name: 'openenroll_job_runs_total',
      help: 'Job runs by kind and result',
      labelNames: ['kind', 'result'],
      registers: [this.registry],
    });
    this.jobDuration = new Histogram({
      name: 'openenroll_job_duration_seconds',
      help: 'Job run duration by kind',
      labelNames: ['kind'],
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900],
      registers: [this.registry],
    });
    this.storeUp = new Gauge({
      name: 'openenroll_store_up',
      help: '1 when the store answered the last readiness check',
      registers: [this.registry],
    });
  }
}
