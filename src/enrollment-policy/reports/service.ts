import { sql, type SelectQueryBuilder, type SqlBool } from 'kysely';
import type { Principal } from '../../auth/principal.js';
import { whereVisible } from '../../auth/scope-tags.js';
import { badRequest, forbidden, notFound } from '../../graph/errors.js';
import { compileFilter } from '../../graph/odata/compile.js';
import { evaluateFilter } from '../../graph/odata/evaluate.js';
import type { Clock } from '../../shared/time.js';
import type { Store } from '../../store/db.js';
import type { EnrollmentAttemptsTable, TermsAcceptancesTable } from '../../store/schema.js';
import { TERMS_OBJECT } from '../terms/rules.js';
import { reasonText, REPORTS, reportModel, topLevelComparisons, type ReportDefinition, type ReportRequest } from './catalogue.js';
import { describeAbandonment, effectiveOutcome, reportRange, SECTIONS, summarize, USER_ACTIONS, type ActionName, type IncompleteSummary, type ReportRange, type SectionId } from './incomplete.js';

/** A report row: column name → value. */
export type ReportRow = Record<string, string | number | boolean | null>;

/** Who the report is for: its tenant and the scope tags that bound what it shows. */
export interface ReportScope {
  tenantId: string;
  principal: Pick<Principal, 'tenantId' | 'scopeTagIds'>;
  /** The report's "now" (an export reports as of its request); the clock's when absent. */
  now?: Date;
}

const PAGE = 1000;
/** Reports assembled in memory stop here; beyond it the caller must narrow the filter. */
export const MAX_MEMORY_ROWS = 200_000;
const MANAGED_DEVICE_OBJECT = 'managedDevice';

/** Rows of the enrollment reports, for report actions and exports. */
export class ReportData {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Refuses reports whose rows aren't scope-tagged to principals limited by scope tags. */
  assertAllowed(def: ReportDefinition, principal: Pick<Principal, 'scopeTagIds'>): void {
    if (def.unscopedOnly && principal.scopeTagIds !== null) {
      throw forbidden(`Report '${def.name}' covers every user of the tenant and needs a principal that is not limited by scope tags.`);
    }
  }

  /** Checks what can only be checked against the clock (the incomplete report's date range). */
  checkRequest(def: ReportDefinition, request: ReportRequest, now: Date = this.clock.now()): void {
    if (def.name === 'IncompleteUserEnrollments') this.incompleteRange(request, now);
  }

  /** Failed attempts of a tenant, for the Graph-style failure collections. */
  failuresBase(tenantId: string) {
    return this.store.db.selectFrom('enrollment_attempts').selectAll().where('tenant_id', '=', tenantId).where('outcome', '=', 'failed');
  }

  /** 404 unless the device exists and the caller's scope tags let it see the device. */
  async assertDeviceVisible(scope: ReportScope, deviceId: string): Promise<void> {
    const q = this.store.db.selectFrom('managed_devices').select('id').where('tenant_id', '=', scope.tenantId).where('id', '=', deviceId);
    if (!(await whereVisible(q, scope.principal, MANAGED_DEVICE_OBJECT, 'managed_devices.id').executeTakeFirst())) {
      throw notFound(`Managed device '${deviceId}' was not found.`);
    }
  }

  /** One page of rows and the total, for report actions. */
  async page(def: ReportDefinition, scope: ReportScope, request: ReportRequest, skip: number, top: number): Promise<{ total: number; rows: ReportRow[] }> {
    this.assertAllowed(def, scope.principal);
    if (isSqlReport(def)) {
      const total = await this.sqlCount(def, scope, request);
      const rows = top === 0 ? [] : await this.sqlRows(def, scope, request, skip, top);
      return { total, rows };
    }
    const all = await this.memoryRows(def, scope, request);
    return { total: all.length, rows: all.slice(skip, skip + top) };
  }

  /** Every row in order, a page at a time, for exports. */
  async *all(def: ReportDefinition, scope: ReportScope, request: ReportRequest): AsyncGenerator<ReportRow> {
    this.assertAllowed(def, scope.principal);
    if (isSqlReport(def)) {
      for (let offset = 0; ; offset += PAGE) {
        const rows = await this.sqlRows(def, scope, request, offset, PAGE);
        yield* rows;
        if (rows.length < PAGE) return;
      }
    }
    yield* await this.memoryRows(def, scope, request);
  }

  // ---- SQL-backed reports ----

  /** Adds the request's filter, search and order to a report's query. */
  private refine<DB, TB extends keyof DB, O>(def: ReportDefinition, q: SelectQueryBuilder<DB, TB, O>, request: ReportRequest, keyColumn: string, ordered: boolean) {
    let out = q;
    if (request.filter) out = out.where(compileFilter(reportModel(def), request.filter));
    if (request.search) {
      const searchable = def.columns.filter((col) => col.searchable && col.sql);
      const pattern = `%${request.search.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
      out = out.where(sql<SqlBool>`(${sql.join(searchable.map((col) => sql`lower(${sql.ref(col.sql!)}) like ${pattern} escape '\\'`), sql` or `)})`);
    }
    if (!ordered) return out;
    for (const o of request.orderBy) {
      const col = sql.ref(def.columns.find((x) => x.name === o.column)!.sql!);
      out = out.orderBy(sql`case when ${col} is null then 0 else 1 end`, o.direction).orderBy(col, o.direction);
    }
    return out.orderBy(sql.ref(keyColumn));
  }

  private failures(scope: ReportScope) {
    return this.store.db.selectFrom('enrollment_attempts').where('tenant_id', '=', scope.tenantId).where('outcome', '=', 'failed');
  }

  private acceptances(scope: ReportScope) {
    const q = this.store.db
      .selectFrom('terms_acceptances')
      .innerJoin('terms_and_conditions', (j) => j.onRef('terms_and_conditions.id', '=', 'terms_acceptances.terms_id').onRef('terms_and_conditions.tenant_id', '=', 'terms_acceptances.tenant_id'))
      .where('terms_acceptances.tenant_id', '=', scope.tenantId);
    return whereVisible(q, scope.principal, TERMS_OBJECT, 'terms_and_conditions.id');
  }

  private async sqlCount(def: ReportDefinition, scope: ReportScope, request: ReportRequest): Promise<number> {
    const count = sql<number>`count(*)`.as('n');
    const row =
      def.name === 'EnrollmentFailures'
        ? await this.refine(def, this.failures(scope), request, 'id', false).select(count).executeTakeFirst()
        : await this.refine(def, this.acceptances(scope), request, 'terms_acceptances.id', false).select(count).executeTakeFirst();
    return Number((row as { n: number | string } | undefined)?.n ?? 0);
  }

  private async sqlRows(def: ReportDefinition, scope: ReportScope, request: ReportRequest, offset: number, limit: number): Promise<ReportRow[]> {
    if (def.name === 'EnrollmentFailures') {
      const rows = await this.refine(def, this.failures(scope).selectAll(), request, 'id', true).limit(limit).offset(offset).execute();
      return rows.map(failureRow);
    }
    const rows = await this.refine(
      def,
      this.acceptances(scope)
        .selectAll('terms_acceptances')
        .select(['terms_and_conditions.display_name as terms_display_name', 'terms_and_conditions.version as terms_version']),
      request,
      'terms_acceptances.id',
      true,
    )
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map(acceptanceRow);
  }

  // ---- reports assembled in memory ----

  private async memoryRows(def: ReportDefinition, scope: ReportScope, request: ReportRequest): Promise<ReportRow[]> {
    const rows = def.name === 'IncompleteUserEnrollments' ? (await this.incomplete(scope, request)).rows : await this.devicePolicyRows(scope, request);
    const model = reportModel(def);
    const searchable = def.columns.filter((col) => col.searchable).map((col) => col.name);
    const needle = request.search?.toLowerCase();
    const kept = rows.filter(
      (r) =>
        (!request.filter || evaluateFilter(model, request.filter, r)) &&
        (!needle || searchable.some((col) => typeof r[col] === 'string' && (r[col] as string).toLowerCase().includes(needle))),
    );
    return sortRows(kept, request.orderBy);
  }

  private async devicePolicyRows(scope: ReportScope, request: ReportRequest): Promise<ReportRow[]> {
    const deviceIds = (topLevelComparisons(request.filter, 'DeviceId') ?? []).filter((x) => x.op === 'eq' && typeof x.value === 'string').map((x) => x.value as string);
    let q = this.store.db
      .selectFrom('enrollment_device_snapshots')
      .innerJoin('managed_devices', (j) => j.onRef('managed_devices.id', '=', 'enrollment_device_snapshots.device_id').onRef('managed_devices.tenant_id', '=', 'enrollment_device_snapshots.tenant_id'))
      .select([
        'enrollment_device_snapshots.device_id',
        'enrollment_device_snapshots.user_principal_name',
        'enrollment_device_snapshots.enrolled_at',
        'enrollment_device_snapshots.applied',
        'managed_devices.device_name',
      ])
      .where('enrollment_device_snapshots.tenant_id', '=', scope.tenantId);
    // Device ids compare exactly here; the filter (case-insensitive) runs on the rows afterwards.
    if (deviceIds.length > 0) q = q.where(sql<SqlBool>`lower(enrollment_device_snapshots.device_id) = ${deviceIds[0]!.toLowerCase()}`);
    q = whereVisible(q, scope.principal, MANAGED_DEVICE_OBJECT, 'managed_devices.id');
    const out: ReportRow[] = [];
    for (const s of await q.limit(MAX_MEMORY_ROWS).execute()) {
      for (const p of JSON.parse(s.applied) as AppliedSnapshot[]) {
        // Device limit restrictions aren't a profile type of this view (-E §8.3).
        if (p.type === 'limit') continue;
        out.push(devicePolicyRow(s, p));
      }
    }
    return out;
  }

  // ---- incomplete user enrollments ----

  /** The range of an incomplete-enrollments request: from its StartDateTime bounds, else the past two weeks. */
  incompleteRange(request: ReportRequest, now: Date): ReportRange {
    const bounds = topLevelComparisons(request.filter, 'StartDateTime');
    if (!bounds || bounds.some((b) => !['ge', 'gt', 'le', 'lt'].includes(b.op))) {
      throw badRequest("Invalid value for property 'filter': StartDateTime can only bound the date range (ge, gt, le, lt joined with 'and').", 'filter');
    }
    const lows = bounds.filter((b) => b.op === 'ge' || b.op === 'gt').map((b) => String(b.value));
    const highs = bounds.filter((b) => b.op === 'le' || b.op === 'lt').map((b) => String(b.value));
    const from = lows.sort().at(-1);
    const to = highs.sort()[0];
    const range = reportRange(now, from, to);
    if ('error' in range) throw badRequest(`Invalid value for property 'filter': ${range.error}`, 'filter');
    return range;
  }

  /** Incomplete attempts as rows, and the report's summary (tiles, daily line per section, per action). */
  async incomplete(scope: ReportScope, request: ReportRequest): Promise<{ rows: ReportRow[]; summary: IncompleteSummary }> {
    this.assertAllowed(REPORTS.IncompleteUserEnrollments, scope.principal);
    const now = scope.now ?? this.clock.now();
    const range = this.incompleteRange(request, now);
    const sessions = await this.store.db
      .selectFrom('enrollment_sessions')
      .selectAll()
      .where('tenant_id', '=', scope.tenantId)
      .where('started_at', '>=', range.from)
      .where('started_at', '<=', range.to)
      .orderBy('started_at')
      .limit(MAX_MEMORY_ROWS)
      .execute();
    const os = eqValue(request, 'OperatingSystem');
    const sectionName = eqValue(request, 'Section');
    const section = (Object.keys(SECTIONS) as SectionId[]).find((s) => SECTIONS[s].toLowerCase() === sectionName?.toLowerCase());
    const attempts = sessions.map((s) => ({
      session: s,
      startedAt: s.started_at,
      platform: s.platform,
      outcome: effectiveOutcome(
        {
          status: s.status as 'inProgress',
          lastActivityAt: s.last_activity_at,
          actionName: s.action_name as ActionName,
          endedAt: s.ended_at,
          endActionName: s.end_action_name,
          endUserAction: s.end_user_action,
        },
        now,
      ),
    }));
    const forSummary = attempts.filter((a) => !os || a.platform.toLowerCase() === os.toLowerCase());
    const summary = summarize(forSummary, range, sectionName !== undefined && !section ? ('none' as SectionId) : section);
    const rows: ReportRow[] = attempts
      .filter((a) => a.outcome.outcome === 'incomplete')
      .map(({ session: s, outcome }) => {
        const { section: sec, screenOrFlow } = describeAbandonment(outcome.actionName!, outcome.userAction!);
        return {
          AttemptId: s.id,
          StartDateTime: s.started_at,
          IncompleteDateTime: outcome.endedAt ?? null,
          OperatingSystem: s.platform,
          UserId: s.user_id,
          UserPrincipalName: s.user_principal_name,
          Section: SECTIONS[sec],
          ActionName: outcome.actionName!,
          ScreenOrFlow: screenOrFlow,
          UserAction: USER_ACTIONS[outcome.userAction!],
        };
      });
    return { rows, summary };
  }
}

const isSqlReport = (def: ReportDefinition) => def.name === 'EnrollmentFailures' || def.name === 'TermsAndConditionsAcceptance';

/** A top-level `Column eq 'value'` of the request, if there is one. */
function eqValue(request: ReportRequest, column: string): string | undefined {
  const eq = (topLevelComparisons(request.filter, column) ?? []).find((x) => x.op === 'eq' && typeof x.value === 'string');
  return eq?.value as string | undefined;
}

export function failureRow(r: EnrollmentAttemptsTable): ReportRow {
  const text = reasonText(r.reason);
  return {
    ActivityId: r.activity_id,
    EnrollmentDateTime: r.occurred_at,
    FailureReason: text.title,
    FailureReasonCode: r.reason,
    FailureCategory: r.failure_category,
    FailureDetails: r.message,
    RecommendedSteps: text.remediation,
    OperatingSystem: r.os_platform,
    OSVersion: r.os_version,
    UserId: r.user_id,
    UserPrincipalName: r.user_principal_name,
    EnrollmentMethod: r.method,
    DeviceId: r.device_id,
  };
}

function acceptanceRow(r: TermsAcceptancesTable & { terms_display_name: string; terms_version: number }): ReportRow {
  const accepted = Number(r.accepted_version);
  const current = Number(r.terms_version);
  return {
    TermsAndConditionsId: r.terms_id,
    TermsAndConditionsName: r.terms_display_name,
    UserName: r.user_display_name,
    UserPrincipalName: r.user_principal_name,
    AcceptedVersion: accepted,
    AcceptedDateTime: r.accepted_at,
    CurrentVersion: current,
    AcceptedLatest: accepted >= current,
  };
}

/** The applied-policy snapshot as stored (AppliedPolicy JSON; read defensively, it outlives code changes). */
interface AppliedSnapshot {
  policyId?: string;
  displayName?: string;
  type?: string;
  priority?: number;
  isDefault?: boolean;
  target?: string | { groupId?: string };
  filterResult?: { filterId?: string; mode?: string; matched?: boolean; error?: string };
  state?: string;
}

function devicePolicyRow(
  s: { device_id: string; user_principal_name: string | null; enrolled_at: string; device_name: string | null },
  p: AppliedSnapshot,
): ReportRow {
  const group = typeof p.target === 'object' && p.target !== null ? (p.target.groupId ?? null) : null;
  // The device enrollment page shows the default policies as targeting the device, assigned ones the user.
  const target = p.isDefault || p.target === 'default' || p.target === 'allDevices' ? 'device' : 'user';
  const f = p.filterResult;
  return {
    DeviceId: s.device_id,
    DeviceName: s.device_name,
    UserPrincipalName: s.user_principal_name,
    EnrollmentDateTime: s.enrolled_at,
    PolicyId: p.policyId ?? null,
    PolicyName: p.displayName ?? null,
    PolicyType: p.type ?? null,
    State: p.state ?? null,
    Priority: typeof p.priority === 'number' ? p.priority : null,
    Target: target,
    TargetGroupId: group,
    FilterId: f?.filterId ?? null,
    FilterMode: f?.mode ?? null,
    FilterResult: f ? (f.error ? 'error' : f.matched ? 'match' : 'noMatch') : null,
  };
}

/** Pure: rows sorted by the request's order (nulls first ascending, as OData orders them). */
export function sortRows(rows: ReportRow[], orderBy: ReportRequest['orderBy']): ReportRow[] {
  return [...rows].sort((a, b) => {
    for (const o of orderBy) {
      const dir = o.direction === 'asc' ? 1 : -1;
      const x = a[o.column] ?? null;
      const y = b[o.column] ?? null;
      if (x === y) continue;
      if (x === null) return -dir;
      if (y === null) return dir;
      const cmp = typeof x === 'string' && typeof y === 'string' ? (x.toLowerCase() < y.toLowerCase() ? -1 : x.toLowerCase() > y.toLowerCase() ? 1 : x < y ? -1 : 1) : x < y ? -1 : 1;
      return cmp * dir;
    }
    return 0;
  });
}

