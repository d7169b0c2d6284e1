import type { Executor } from '../store/db.js';
import type { JobStatus } from './scheduler.js';

/** A job as the CLI and status pages show it. */
export interface JobSummary {
  id: string;
  tenantId: string;
  kind: string;
  dedupeKey: string | null;
  status: JobStatus;
  runAt: string;
  intervalMs: number | null;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
  lastStartedAt: string | null;
  lastFinishedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface JobFilter {
  tenantId?: string;
  kind?: string;
  status?: JobStatus | JobStatus[];
  dedupeKey?: string;
  /** Default 100. */
  limit?: number;
}

/** Jobs in the order they are due. */
export async function listJobs(db: Executor, filter: JobFilter = {}): Promise<JobSummary[]> {
  let q = db.selectFrom('jobs').selectAll();
  if (filter.tenantId !== undefined) q = q.where('tenant_id', '=', filter.tenantId);
  if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
  if (filter.dedupeKey !== undefined) q = q.where('dedupe_key', '=', filter.dedupeKey);
  if (filter.status !== undefined) {
    const statuses = Array.isArray(filter.status) ? filter.status : [filter.status];
    if (statuses.length === 0) return [];
    q = q.where('status', 'in', statuses);
  }
  const rows = await q
    .orderBy('run_at')
    .orderBy('id')
    .limit(filter.limit ?? 100)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    kind: r.kind,
    dedupeKey: r.dedupe_key,
    status: r.status as JobStatus,
    runAt: r.run_at,
    intervalMs: r.interval_ms === null ? null : Number(r.interval_ms),
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    lastError: r.last_error,
    leaseOwner: r.lease_owner,
    leaseExpiresAt: r.lease_expires_at,
    lastStartedAt: r.last_started_at,
    lastFinishedAt: r.last_finished_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}
