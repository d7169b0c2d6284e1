import crypto from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import { badRequest, GraphError, invalidProperty, notFound } from '../../graph/errors.js';
import type { JobContext, JobScheduler } from '../../jobs/scheduler.js';
import { DAY, type Clock } from '../../shared/time.js';
import type { Executor, Store } from '../../store/db.js';
import type { ReportExportJobsTable } from '../../store/schema.js';
import { parseReportRequest, reportNamed, type ReportDefinition } from './catalogue.js';
import { CSV_BOM, csvLine } from './csv.js';
import type { ReportData, ReportScope } from './service.js';

export const EXPORT_JOB_TYPE = 'microsoft.graph.deviceManagementExportJob';
export const EXPORT_JOB_KIND = 'reports.export';
export const EXPORT_PURGE_KIND = 'reports.exportPurge';
/** Graph's "no date" for an export that hasn't finished. */
export const NOT_YET = '0001-01-01T00:00:00Z';

export interface ExportJobInput {
  reportName: string;
  filter?: string | null;
  select?: string[] | null;
  search?: string | null;
  format?: string;
  localizationType?: string;
  snapshotId?: string | null;
}

const AUDIT = { resourceType: EXPORT_JOB_TYPE, category: 'Enrollment', componentName: 'Reporting' } as const;

/**
 * Report exports (Graph deviceManagementExportJob): a request is checked when it is made, then a
 * durable job writes the CSV into the store; the admin polls the job and downloads the file from
 * an authenticated route until it expires, when a second job deletes it.
 */
export class ReportExports {
  /** The file may be at most `maxBytes`; it can be downloaded for `retentionMs` after it is ready. */
  readonly limits = { maxBytes: 25 * 1024 * 1024, retentionMs: DAY };

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly jobs: JobScheduler,
    private readonly data: ReportData,
  ) {}

  register(): void {
    this.jobs.register(EXPORT_JOB_KIND, (payload, ctx) => this.run(payload as { exportId: string }, ctx), { maxAttempts: 3, timeoutMs: 10 * 60_000 });
    this.jobs.register(EXPORT_PURGE_KIND, async (payload) => this.purge(payload as { exportId: string }), { maxAttempts: 5 });
  }

  /** The caller's jobs: an unscoped principal sees the tenant's, a scoped one only those it asked for. */
  base(actor: Actor, db: Executor = this.store.db) {
    let q = db
      .selectFrom('report_export_jobs')
      .selectAll()
      .where('tenant_id', '=', actor.tenantId)
      .where((eb) => eb.or([eb('expiration_date_time', 'is', null), eb('expiration_date_time', '>=', this.clock.now().toISOString())]));
    if (actor.principal.scopeTagIds !== null) q = q.where('requested_by', '=', actor.principal.id);
    return q;
  }

  async get(actor: Actor, id: string, db: Executor = this.store.db): Promise<ReportExportJobsTable> {
    const row = await this.base(actor, db).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`Export job '${id}' was not found.`);
    return row;
  }

  async create(actor: Actor, input: ExportJobInput): Promise<ReportExportJobsTable> {
    const def = reportNamed(input.reportName);
    this.data.assertAllowed(def, actor.principal);
    if (input.format !== undefined && input.format !== 'csv') throw invalidProperty('format', "OpenEnroll exports reports as 'csv'.");
    if (input.snapshotId !== undefined && input.snapshotId !== null) throw invalidProperty('snapshotId', 'report snapshots are not supported; export with a filter instead.');
    const request = parseReportRequest(def, input);
    const now = this.clock.now();
    this.data.checkRequest(def, request, now);
    const row: ReportExportJobsTable = {
      id: `${def.name}_${crypto.randomUUID()}`,
      tenant_id: actor.tenantId,
      report_name: def.name,
      filter: input.filter ?? null,
      select_columns: input.select && input.select.length > 0 ? JSON.stringify(input.select) : null,
      search: input.search ?? null,
      format: 'csv',
      localization_type: input.localizationType ?? 'localizedValuesAsAdditionalColumn',
      status: 'notStarted',
      request_date_time: now.toISOString(),
      expiration_date_time: null,
      row_count: null,
      content: null,
      content_bytes: null,
      error: null,
      requested_by: actor.principal.id,
      requester_scope: actor.principal.scopeTagIds === null ? null : JSON.stringify(actor.principal.scopeTagIds),
      updated_at: now.toISOString(),
    };
    return this.store.transaction(async (trx) => {
      await trx.insertInto('report_export_jobs').values(row).execute();
      await this.jobs.enqueue(trx, { tenantId: actor.tenantId, kind: EXPORT_JOB_KIND, payload: { exportId: row.id }, dedupeKey: `report-export:${row.id}` });
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Create report export job', operation: 'Create', resourceId: row.id, resourceDisplayName: def.name, after: exportJobEntity(row) });
      return row;
    });
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.get(actor, id, trx);
      await trx.deleteFrom('report_export_jobs').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await this.jobs.cancel(trx, actor.tenantId, `report-export:${id}`);
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Delete report export job', operation: 'Delete', resourceId: id, resourceDisplayName: row.report_name, before: exportJobEntity(row) });
    });
  }

  /** The finished file. */
  async content(actor: Actor, id: string): Promise<{ csv: string; fileName: string }> {
    const row = await this.get(actor, id);
    if (row.status !== 'completed' || row.content === null) {
      throw new GraphError(409, 'Conflict', `Export job '${id}' is ${row.status}; the file can be downloaded once its status is completed.`);
    }
    return { csv: row.content, fileName: `${row.id}.csv` };
  }

  private async run(payload: { exportId: string }, ctx: JobContext): Promise<void> {
    const tenantId = ctx.job.tenantId;
    const row = await this.store.db.selectFrom('report_export_jobs').selectAll().where('tenant_id', '=', tenantId).where('id', '=', payload.exportId).executeTakeFirst();
    if (!row || row.status === 'completed' || row.status === 'failed') return;
    await this.store.transaction(async (trx) => {
      await ctx.assertLease(trx);
      await trx.updateTable('report_export_jobs').set({ status: 'inProgress', updated_at: this.clock.now().toISOString() }).where('id', '=', row.id).execute();
    });
    let result: { csv: string; rows: number; bytes: number };
    try {
      result = await this.render(reportNamed(row.report_name), row, ctx.signal);
    } catch (err) {
      // A request the report refuses, or a file too large, won't succeed on a retry.
      const final = (err instanceof GraphError && err.statusCode < 500) || ctx.job.attempts >= ctx.job.maxAttempts;
      if (final) await this.fail(row, ctx, err instanceof Error ? err.message : String(err));
      if (err instanceof GraphError && err.statusCode < 500) return;
      throw err;
    }
    const done = this.clock.now();
    const expiration = new Date(done.getTime() + this.limits.retentionMs);
    await this.store.transaction(async (trx) => {
      await ctx.assertLease(trx);
      await trx
        .updateTable('report_export_jobs')
        .set({
          status: 'completed',
          content: result.csv,
          content_bytes: result.bytes,
          row_count: result.rows,
          expiration_date_time: expiration.toISOString(),
          error: null,
          updated_at: done.toISOString(),
        })
        .where('id', '=', row.id)
        .execute();
      await this.jobs.enqueue(trx, { tenantId, kind: EXPORT_PURGE_KIND, payload: { exportId: row.id }, runAt: expiration, dedupeKey: `report-export-purge:${row.id}` });
    });
  }

  private async fail(row: ReportExportJobsTable, ctx: JobContext, message: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      await ctx.assertLease(trx);
      await trx.updateTable('report_export_jobs').set({ status: 'failed', error: message.slice(0, 2000), updated_at: this.clock.now().toISOString() }).where('id', '=', row.id).execute();
    });
  }

  /** The CSV of a job's report, as of when it was requested, under the requester's scope. */
  private async render(def: ReportDefinition, row: ReportExportJobsTable, signal: AbortSignal): Promise<{ csv: string; rows: number; bytes: number }> {
    const request = parseReportRequest(def, { filter: row.filter, select: row.select_columns ? (JSON.parse(row.select_columns) as string[]) : null, search: row.search });
    const scopeTagIds = row.requester_scope === null ? null : (JSON.parse(row.requester_scope) as string[]);
    const scope: ReportScope = { tenantId: row.tenant_id, principal: { tenantId: row.tenant_id, scopeTagIds }, now: new Date(row.request_date_time) };
    const columns = request.select.map((name) => def.columns.find((c) => c.name === name)!);
    const text = columns.map((c) => c.type === 'String');
    let csv = CSV_BOM + csvLine(request.select, request.select.map(() => false));
    let bytes = Buffer.byteLength(csv);
    let rows = 0;
    for await (const r of this.data.all(def, scope, request)) {
      signal.throwIfAborted();
      const line = csvLine(
        columns.map((c) => r[c.name]),
        text,
      );
      bytes += Buffer.byteLength(line);
      if (bytes > this.limits.maxBytes) {
        throw badRequest(`The export is larger than ${this.limits.maxBytes} bytes; narrow it with a filter or fewer columns.`, 'filter');
      }
      csv += line;
      rows++;
    }
    return { csv, rows, bytes };
  }

  private async purge(payload: { exportId: string }): Promise<void> {
    await this.store.db
      .deleteFrom('report_export_jobs')
      .where('id', '=', payload.exportId)
      .where('expiration_date_time', '<=', this.clock.now().toISOString())
      .execute();
  }
}

/** The Graph entity; `url` is added by the route, which knows the public address. */
export function exportJobEntity(r: ReportExportJobsTable): Record<string, unknown> {
  return {
    id: r.id,
    reportName: r.report_name,
    filter: r.filter,
    select: r.select_columns ? (JSON.parse(r.select_columns) as string[]) : [],
    format: r.format,
    snapshotId: null,
    localizationType: r.localization_type,
    status: r.status,
    url: null,
    requestDateTime: r.request_date_time,
    expirationDateTime: r.expiration_date_time ?? NOT_YET,
    search: r.search,
  };
}
