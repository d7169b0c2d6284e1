import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { JobOutcome, JobScheduler } from '../../jobs/scheduler.js';
import { buildPlist, parsePlistDict, type PlistValue } from '../../shared/plist.js';
import type { Clock } from '../../shared/time.js';
import type { Dialect, Executor, Store, Trx } from '../../store/db.js';
import type { MdmCommandQueueTable } from '../../store/schema.js';
import type { CommandQueue, PushNotifier } from './contracts.js';
import { commandDict, isPlistDict, type CommandReport } from './messages.js';
import { mapLimit } from '../../shared/concurrency.js';

/**
 * The command queue (NanoMDM's model): a command plist stored once, a queue row per enrollment.
 * Rows are 'queued' → 'sent' → a final status (Acknowledged, Error, CommandFormatError), or
 * 'NotNow' (served again only on the device's next Idle), or 'Cancelled' (Authenticate and
 * CheckOut clear what is pending). Pushes happen after commit through a durable job.
 */

export const PENDING_STATUSES = ['queued', 'sent', 'NotNow'] as const;
export const FINAL_STATUSES = ['Acknowledged', 'Error', 'CommandFormatError', 'Cancelled'] as const;
export const PUSH_JOB = 'apple.mdm.push';
/** Commands the push job pushes at once (each claims its rows, then sends over the shared HTTP/2 session). */
const PUSH_CONCURRENCY = 32;
/** Queue rows the push job reads at a time. */
const PUSH_BATCH = 10_000;
/** How long one push job run pushes before it hands over to the next run (the job's timeout is 5 minutes). */
const PUSH_RUN_MS = 2 * 60_000;

const REQUEST_TYPE = /^[A-Za-z][A-Za-z0-9.]{0,63}$/;
const COMMAND_UUID = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;
/** Rows read per poll when choosing the next command (a device rarely has more pending). */
const NEXT_WINDOW = 500;
const IN_CHUNK = 500;

export interface QueueOptions {
  source?: 'admin' | 'system';
  createdBy?: string | null;
  priority?: number;
  /** Served only once every row queued earlier for the enrollment is finished (DeviceConfigured). */
  afterPrior?: boolean;
  /** System commands that must not pile up: at most one pending per enrollment and key. */
  dedupeKey?: string;
  /** false when the device is polling right now (no push needed). Default true. */
  push?: boolean;
}

export interface QueuedCommand {
  commandUuid: string;
  requestType: string;
  plist: string;
}

export interface RecordedResult {
  row: MdmCommandQueueTable;
  requestType: string;
  /** The Command dict as queued (RequestType and its keys). */
  command: Record<string, PlistValue>;
  /** The device had already reported a final result for it (a retry): nothing more to do. */
  duplicate: boolean;
}

/** Plist-serialisable values only: no null, undefined, functions or non-finite numbers. */
function checkPlistValue(v: unknown, path: string): void {
  if (typeof v === 'string' || typeof v === 'boolean' || Buffer.isBuffer(v) || v instanceof Date) return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`${path} is not a finite number`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkPlistValue(x, `${path}[${i}]`));
    return;
  }
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) checkPlistValue(x, `${path}.${k}`);
    return;
  }
  throw new TypeError(`${path} can't be put in a property list`);
}

export class MdmCommandQueue implements CommandQueue {
  constructor(
    private readonly deps: {
      store: Store;
      clock: Clock;
      jobs: JobScheduler;
      logger: Logger;
      push: () => PushNotifier | undefined;
      /** Queue rows the push job reads at a time; default PUSH_BATCH. */
      pushBatch?: number;
    },
  ) {}

  private get batchSize(): number {
    return this.deps.pushBatch ?? PUSH_BATCH;
  }

  private get dialect(): Dialect {
    return this.deps.store.dialect;
  }

  /** CommandQueue: queues a command for enrollments of the tenant and has them pushed after commit. */
  async enqueue(
    trx: Trx,
    tenantId: string,
    enrollmentIds: readonly string[],
    command: { requestType: string; payload?: Record<string, unknown>; commandUuid?: string },
    opts: { source?: 'admin' | 'system'; createdBy?: string | null; priority?: number } = {},
  ): Promise<string> {
    return this.add(trx, tenantId, enrollmentIds, command, opts);
  }

  /** enqueue with the core's own options (barrier, dedupe, no push). */
  async add(
    trx: Trx,
    tenantId: string,
    enrollmentIds: readonly string[],
    command: { requestType: string; payload?: Record<string, unknown>; commandUuid?: string },
    opts: QueueOptions = {},
  ): Promise<string> {
    if (!REQUEST_TYPE.test(command.requestType)) throw new TypeError(`'${command.requestType}' is not an MDM request type`);
    const payload = command.payload ?? {};
    checkPlistValue(payload, 'payload');
    const uuid = command.commandUuid ?? crypto.randomUUID().toUpperCase();
    if (!COMMAND_UUID.test(uuid)) throw new TypeError('commandUuid must be letters, digits and hyphens');
    const ids = [...new Set(enrollmentIds)];
    if (ids.length === 0) throw new TypeError('a command needs at least one enrollment');
    const priority = opts.priority ?? 0;
    if (!Number.isSafeInteger(priority)) throw new TypeError('priority must be an integer');

    const known = new Set<string>();
    const nextSeq = new Map<string, number>();
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      for (const r of await trx.selectFrom('mdm_enrollments').select('id').where('tenant_id', '=', tenantId).where('id', 'in', chunk).execute()) known.add(r.id);
      const seqs = await trx
        .selectFrom('mdm_command_queue')
        .select(['enrollment_id', (eb) => eb.fn.max<number>('seq').as('max_seq')])
        .where('tenant_id', '=', tenantId)
        .where('enrollment_id', 'in', chunk)
        .groupBy('enrollment_id')
        .execute();
      for (const s of seqs) nextSeq.set(s.enrollment_id, Number(s.max_seq ?? 0) + 1);
    }
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length > 0) throw new TypeError(`unknown MDM enrollment(s): ${unknown.slice(0, 5).join(', ')}`);

    let targets = ids;
    if (opts.dedupeKey) {
      const busy = new Set<string>();
      for (let i = 0; i < ids.length; i += IN_CHUNK) {
        const pending = await trx
          .selectFrom('mdm_command_queue')
          .select('enrollment_id')
          .where('tenant_id', '=', tenantId)
          .where('dedupe_key', '=', opts.dedupeKey)
          .where('status', 'in', [...PENDING_STATUSES])
          .where('enrollment_id', 'in', ids.slice(i, i + IN_CHUNK))
          .execute();
        for (const p of pending) busy.add(p.enrollment_id);
      }
      targets = ids.filter((id) => !busy.has(id));
      if (targets.length === 0) return '';
    }

    const now = this.deps.clock.now().toISOString();
    const plist = buildPlist(commandDict(uuid, command.requestType, payload as Record<string, PlistValue>));
    await trx
      .insertInto('mdm_commands')
      .values({ uuid, tenant_id: tenantId, request_type: command.requestType, command_plist: plist, source: opts.source ?? 'system', created_by: opts.createdBy ?? null, created_at: now })
      .execute();
    const push = opts.push !== false;
    const rows: MdmCommandQueueTable[] = targets.map((enrollmentId) => ({
      tenant_id: tenantId,
      enrollment_id: enrollmentId,
      command_uuid: uuid,
      status: 'queued',
      priority,
      result_plist: null,
      error_chain: null,
      not_now_count: 0,
      queued_at: now,
      sent_at: null,
      completed_at: null,
      // A device that is polling gets it now; nothing to push.
      push_sent_at: push ? null : now,
      seq: nextSeq.get(enrollmentId) ?? 1,
      after_prior: opts.afterPrior ? 1 : 0,
      dedupe_key: opts.dedupeKey ?? null,
    }));
    for (let i = 0; i < rows.length; i += IN_CHUNK) await trx.insertInto('mdm_command_queue').values(rows.slice(i, i + IN_CHUNK)).execute();
    // The job row commits with the command, so the push happens exactly when the command exists.
    if (push) await this.deps.jobs.enqueue(trx, { tenantId, kind: PUSH_JOB, dedupeKey: PUSH_JOB });
    return uuid;
  }

  /** Whether a command with this dedupe key is pending for the enrollment. */
  async hasPending(db: Executor, tenantId: string, enrollmentId: string, dedupeKey: string): Promise<boolean> {
    const row = await db
      .selectFrom('mdm_command_queue')
      .select('command_uuid')
      .where('tenant_id', '=', tenantId)
      .where('enrollment_id', '=', enrollmentId)
      .where('dedupe_key', '=', dedupeKey)
      .where('status', 'in', [...PENDING_STATUSES])
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The last command with this dedupe key for the enrollment (any status) and its plist. */
  async lastWithKey(db: Executor, tenantId: string, enrollmentId: string, dedupeKey: string) {
    return db
      .selectFrom('mdm_command_queue as q')
      .innerJoin('mdm_commands as c', 'c.uuid', 'q.command_uuid')
      .select(['q.status', 'q.queued_at', 'c.command_plist'])
      .where('q.tenant_id', '=', tenantId)
      .where('q.enrollment_id', '=', enrollmentId)
      .where('q.dedupe_key', '=', dedupeKey)
      .orderBy('q.seq', 'desc')
      .orderBy('q.queued_at', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  /** Cancels what is pending for these enrollments (Authenticate and CheckOut). */
  async cancelPending(trx: Trx, tenantId: string, enrollmentIds: readonly string[]): Promise<number> {
    if (enrollmentIds.length === 0) return 0;
    const res = await trx
      .updateTable('mdm_command_queue')
      .set({ status: 'Cancelled', completed_at: this.deps.clock.now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('enrollment_id', 'in', [...enrollmentIds])
      .where('status', 'in', [...PENDING_STATUSES])
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /**
   * The next command for the enrollment, marked sent. NotNow-ed commands are served again only
   * when the device reports Idle, so one poll never loops on a command the device deferred.
   */
  async next(trx: Trx, tenantId: string, enrollmentId: string, opts: { includeNotNow: boolean }): Promise<QueuedCommand | undefined> {
    const pending = await trx
      .selectFrom('mdm_command_queue as q')
      .innerJoin('mdm_commands as c', 'c.uuid', 'q.command_uuid')
      .select(['q.command_uuid', 'q.status', 'q.seq', 'q.after_prior', 'c.request_type', 'c.command_plist'])
      .where('q.tenant_id', '=', tenantId)
      .where('q.enrollment_id', '=', enrollmentId)
      .where('q.status', 'in', [...PENDING_STATUSES])
      .orderBy('q.priority', 'desc')
      .orderBy('q.seq', 'asc')
      .orderBy('q.queued_at', 'asc')
      .orderBy('q.command_uuid', 'asc')
      .limit(NEXT_WINDOW)
      .execute();
    const pick = pending.find((r) => {
      if (r.status === 'NotNow' && !opts.includeNotNow) return false;
      return r.after_prior === 0 || !pending.some((o) => o.command_uuid !== r.command_uuid && o.seq < r.seq);
    });
    if (!pick) return undefined;
    await trx
      .updateTable('mdm_command_queue')
      .set({ status: 'sent', sent_at: this.deps.clock.now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('enrollment_id', '=', enrollmentId)
      .where('command_uuid', '=', pick.command_uuid)
      .execute();
    return { commandUuid: pick.command_uuid, requestType: pick.request_type, plist: pick.command_plist };
  }

  private lock<Q extends { forUpdate(): Q }>(q: Q): Q {
    return this.dialect === 'postgres' ? q.forUpdate() : q;
  }

  /** Records a device's result for one of its commands; undefined when the command isn't queued for it. */
  async record(trx: Trx, tenantId: string, enrollmentId: string, report: CommandReport, rawBody: string): Promise<RecordedResult | undefined> {
    if (!report.commandUuid) return undefined;
    const row = await this.lock(
      trx
        .selectFrom('mdm_command_queue')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('enrollment_id', '=', enrollmentId)
        .where('command_uuid', '=', report.commandUuid),
    ).executeTakeFirst();
    if (!row) return undefined;
    const cmd = await trx.selectFrom('mdm_commands').select(['request_type', 'command_plist']).where('uuid', '=', row.command_uuid).executeTakeFirstOrThrow();
    const command = commandOf(cmd.command_plist);
    if ((FINAL_STATUSES as readonly string[]).includes(row.status)) return { row, requestType: cmd.request_type, command, duplicate: true };
    const now = this.deps.clock.now().toISOString();
    const update: Partial<MdmCommandQueueTable> =
      report.status === 'NotNow'
        ? { status: 'NotNow', not_now_count: row.not_now_count + 1 }
        : {
            status: report.status,
            result_plist: rawBody,
            error_chain: report.errorChain ? JSON.stringify(report.errorChain) : null,
            completed_at: now,
          };
    await trx
      .updateTable('mdm_command_queue')
      .set(update)
      .where('tenant_id', '=', tenantId)
      .where('enrollment_id', '=', enrollmentId)
      .where('command_uuid', '=', row.command_uuid)
      .execute();
    return { row: { ...row, ...update }, requestType: cmd.request_type, command, duplicate: false };
  }

  /**
   * The push job: wakes every enrollment with commands not yet pushed, one push per command. The
   * notifier claims the rows it pushes (push_sent_at); rows of enrollments that can't be woken
   * (no token yet, disabled, APNs said unregistered) are marked here so they don't linger; the
   * device gets them when it next polls.
   */
  async pushPending(tenantId: string, signal?: AbortSignal, runMs = PUSH_RUN_MS): Promise<JobOutcome> {
    const budget = AbortSignal.timeout(runMs);
    const stop = signal ? AbortSignal.any([signal, budget]) : budget;
    // Batches in key order; a row whose push failed is released behind the cursor and waits for the next run.
    let after: { commandUuid: string; enrollmentId: string } | undefined;
    for (;;) {
      const rows = await this.unpushed(tenantId, after);
      await this.pushRows(tenantId, rows, stop);
      if (rows.length < this.batchSize || stop.aborted) break;
      const last = rows.at(-1)!;
      after = { commandUuid: last.command_uuid, enrollmentId: last.enrollment_id };
    }
    // Paced pushes to a large fleet take long: many bounded runs, each followed at once by the next, rather than one the job timeout kills.
    return budget.aborted && !signal?.aborted ? { rescheduleAt: this.deps.clock.now() } : undefined;
  }

  /** Queue rows waiting for a push, after `after` in (command, enrollment) order (the mdm_command_queue_unpushed index). */
  private async unpushed(tenantId: string, after: { commandUuid: string; enrollmentId: string } | undefined) {
    let q = this.deps.store.db
      .selectFrom('mdm_command_queue as q')
      .innerJoin('mdm_enrollments as e', 'e.id', 'q.enrollment_id')
      .select(['q.enrollment_id', 'q.command_uuid', 'e.enabled', 'e.push_token', 'e.push_magic', 'e.apns_status'])
      .where('q.tenant_id', '=', tenantId)
      .where('q.push_sent_at', 'is', null)
      // A literal, as in the partial index's predicate, so SQLite's planner can prove the index applies.
      .where('q.status', '=', sql.lit('queued'))
      .orderBy('q.command_uuid')
      .orderBy('q.enrollment_id')
      .limit(this.batchSize);
    if (after) q = q.where((eb) => eb(eb.refTuple('q.command_uuid', 'q.enrollment_id'), '>', eb.tuple(after.commandUuid, after.enrollmentId)));
    return q.execute();
  }

  private async pushRows(
    tenantId: string,
    rows: Array<{ enrollment_id: string; command_uuid: string; enabled: number; push_token: string | null; push_magic: string | null; apns_status: string | null }>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const byCommand = new Map<string, string[]>();
    const unreachable = new Map<string, string[]>();
    for (const r of rows) {
      const target = r.enabled === 1 && r.push_token && r.push_magic && r.apns_status === null ? byCommand : unreachable;
      const ids = target.get(r.command_uuid);
      if (ids) ids.push(r.enrollment_id);
      else target.set(r.command_uuid, [r.enrollment_id]);
    }
    const now = this.deps.clock.now().toISOString();
    for (const [uuid, ids] of unreachable) {
      for (let i = 0; i < ids.length; i += IN_CHUNK) {
        await this.deps.store.db
          .updateTable('mdm_command_queue')
          .set({ push_sent_at: now })
          .where('tenant_id', '=', tenantId)
          .where('command_uuid', '=', uuid)
          .where('enrollment_id', 'in', ids.slice(i, i + IN_CHUNK))
          .where('push_sent_at', 'is', null)
          .execute();
      }
    }
    const notifier = this.deps.push();
    if (!notifier) {
      if (byCommand.size > 0) this.deps.logger.warn({ tenantId, commands: byCommand.size }, 'no APNs notifier; devices get their commands when they next check in');
      return;
    }
    // Commands side by side: one by one, a fan-out of one command per device waited on 10,000 claim-and-send round trips in turn.
    await mapLimit([...byCommand], PUSH_CONCURRENCY, ([commandUuid, ids]) => notifier.push(tenantId, ids, { commandUuid, signal }));
  }
}

/** The Command dict of a stored command plist. */
export function commandOf(plist: string): Record<string, PlistValue> {
  const dict = parsePlistDict(plist, { maxBytes: 64 * 1024 * 1024 });
  return isPlistDict(dict.Command) ? dict.Command : {};
}
