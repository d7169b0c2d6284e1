import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { countResponse, listCollection } from '../../graph/collection.js';
import { badRequest, notFound } from '../../graph/errors.js';
import { actorOf, resourceUrl, sendEntity } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { GraphBody, IdParam, Nullable, ODataQueryString } from '../../graph/schemas.js';
import type { EnrollmentAttemptsTable, ReportExportJobsTable } from '../../store/schema.js';
import { deviceEnrollmentTypeOf, parseReportRequest, REPORTS, REQUEST_LIMITS, topLevelComparisons, type ReportDefinition } from './catalogue.js';
import { EXPORT_JOB_TYPE, exportJobEntity, type ExportJobInput, type ReportExports } from './exports.js';
import { failureRow, type ReportData, type ReportScope } from './service.js';

const FAILURE_TYPE = 'microsoft.graph.openEnrollEnrollmentFailure';
const TROUBLESHOOTING_TYPE = 'microsoft.graph.enrollmentTroubleshootingEvent';

const FAILURE_CATEGORIES = [
  'unknown',
  'authentication',
  'authorization',
  'accountValidation',
  'userValidation',
  'deviceNotSupported',
  'inMaintenance',
  'badRequest',
  'featureNotSupported',
  'enrollmentRestrictionsEnforced',
  'clientDisconnected',
  'userAbandonment',
] as const;

/** The failures report as a Graph-style collection (OpenEnroll extension), filterable by user, reason and date. */
export const enrollmentFailureModel: EntityModel = {
  typeName: FAILURE_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] },
    activityId: { type: 'string', column: 'activity_id', filterOps: ['eq', 'ne', 'startswith'] },
    enrollmentDateTime: { type: 'datetime', column: 'occurred_at' },
    failureReason: { type: 'string' },
    failureReasonCode: { type: 'string', column: 'reason', filterOps: ['eq', 'ne'] },
    failureCategory: { type: 'enum', column: 'failure_category', enumValues: FAILURE_CATEGORIES },
    failureDetails: { type: 'string', column: 'message', filterOps: ['contains'], sortable: false },
    recommendedSteps: { type: 'string' },
    operatingSystem: { type: 'string', column: 'os_platform', caseInsensitive: true },
    osVersion: { type: 'string', column: 'os_version' },
    userId: { type: 'string', column: 'user_id', filterOps: ['eq', 'ne'] },
    userPrincipalName: { type: 'string', column: 'user_principal_name', caseInsensitive: true },
    enrollmentMethod: { type: 'string', column: 'method', filterOps: ['eq', 'ne'] },
    deviceId: { type: 'string', column: 'device_id', filterOps: ['eq', 'ne'] },
  },
};

/** Graph's enrollmentTroubleshootingEvent view of the same rows. */
export const troubleshootingModel: EntityModel = {
  typeName: TROUBLESHOOTING_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] },
    eventDateTime: { type: 'datetime', column: 'occurred_at' },
    correlationId: { type: 'string', column: 'activity_id', filterOps: ['eq', 'ne'] },
    managedDeviceIdentifier: { type: 'string', column: 'device_id', filterOps: ['eq', 'ne'] },
    operatingSystem: { type: 'string', column: 'os_platform', caseInsensitive: true },
    osVersion: { type: 'string', column: 'os_version' },
    userId: { type: 'string', column: 'user_id', filterOps: ['eq', 'ne'] },
    deviceId: { type: 'string' },
    enrollmentType: { type: 'string' },
    failureCategory: { type: 'enum', column: 'failure_category', enumValues: FAILURE_CATEGORIES },
    failureReason: { type: 'string' },
  },
};

function failureEntity(r: EnrollmentAttemptsTable): Record<string, unknown> {
  const row = failureRow(r);
  return {
    '@odata.type': `#${FAILURE_TYPE}`,
    id: r.id,
    activityId: row.ActivityId,
    enrollmentDateTime: row.EnrollmentDateTime,
    failureReason: row.FailureReason,
    failureReasonCode: row.FailureReasonCode,
    failureCategory: row.FailureCategory,
    failureDetails: row.FailureDetails,
    recommendedSteps: row.RecommendedSteps,
    operatingSystem: row.OperatingSystem,
    osVersion: row.OSVersion,
    userId: row.UserId,
    userPrincipalName: row.UserPrincipalName,
    enrollmentMethod: row.EnrollmentMethod,
    deviceId: row.DeviceId,
  };
}

function troubleshootingEntity(r: EnrollmentAttemptsTable): Record<string, unknown> {
  const row = failureRow(r);
  return {
    '@odata.type': `#${TROUBLESHOOTING_TYPE}`,
    id: r.id,
    eventDateTime: r.occurred_at,
    correlationId: r.activity_id,
    managedDeviceIdentifier: r.device_id,
    operatingSystem: r.os_platform,
    osVersion: r.os_version,
    userId: r.user_id,
    // Graph's deviceId is the Entra device id, which a refused enrollment never got.
    deviceId: null,
    enrollmentType: deviceEnrollmentTypeOf(r.method, r.user_id !== null),
    failureCategory: r.failure_category ?? 'unknown',
    failureReason: [row.FailureReason, row.FailureDetails].filter((x) => x).join(': ') || null,
  };
}

const ReportActionBody = GraphBody({
  name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  filter: Type.Optional(Nullable(Type.String({ maxLength: REQUEST_LIMITS.filter }))),
  select: Type.Optional(Nullable(Type.Array(Type.String({ minLength: 1, maxLength: REQUEST_LIMITS.columnName }), { maxItems: REQUEST_LIMITS.select }))),
  search: Type.Optional(Nullable(Type.String({ maxLength: REQUEST_LIMITS.search }))),
  groupBy: Type.Optional(Nullable(Type.Array(Type.String({ maxLength: REQUEST_LIMITS.columnName }), { maxItems: REQUEST_LIMITS.select }))),
  orderBy: Type.Optional(Nullable(Type.Array(Type.String({ maxLength: REQUEST_LIMITS.columnName }), { maxItems: 16 }))),
  skip: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
  top: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  sessionId: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
});
type ReportActionInput = {
  name?: string | null;
  filter?: string | null;
  select?: string[] | null;
  search?: string | null;
  groupBy?: string[] | null;
  orderBy?: string[] | null;
  skip?: number;
  top?: number;
  sessionId?: string | null;
};

const ExportJobBody = GraphBody({
  reportName: Type.String({ minLength: 1, maxLength: 2000 }),
  filter: Type.Optional(Nullable(Type.String({ maxLength: REQUEST_LIMITS.filter }))),
  select: Type.Optional(Nullable(Type.Array(Type.String({ minLength: 1, maxLength: REQUEST_LIMITS.columnName }), { maxItems: REQUEST_LIMITS.select }))),
  search: Type.Optional(Nullable(Type.String({ maxLength: REQUEST_LIMITS.search }))),
  format: Type.Optional(Type.Enum(['csv', 'pdf', 'json', 'unknownFutureValue'])),
  localizationType: Type.Optional(Type.Enum(['localizedValuesAsAdditionalColumn', 'replaceLocalizableValues'])),
  snapshotId: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
  // Read-only properties clients copy back are accepted and ignored.
  id: Type.Optional(Type.String()),
  status: Type.Optional(Type.String()),
  url: Type.Optional(Nullable(Type.String())),
  requestDateTime: Type.Optional(Type.String()),
  expirationDateTime: Type.Optional(Type.String()),
});

const exportJobModel: EntityModel = {
  typeName: EXPORT_JOB_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] },
    reportName: { type: 'string', column: 'report_name' },
    filter: { type: 'string', column: 'filter', filterOps: [], sortable: false },
    select: { type: 'collection' },
    format: { type: 'enum', column: 'format', enumValues: ['csv', 'pdf', 'json', 'unknownFutureValue'] },
    snapshotId: { type: 'string' },
    localizationType: { type: 'enum', column: 'localization_type', enumValues: ['localizedValuesAsAdditionalColumn', 'replaceLocalizableValues'] },
    status: { type: 'enum', column: 'status', enumValues: ['unknown', 'notStarted', 'inProgress', 'completed', 'failed'] },
    url: { type: 'string' },
    requestDateTime: { type: 'datetime', column: 'request_date_time' },
    expirationDateTime: { type: 'datetime', column: 'expiration_date_time' },
    search: { type: 'string', column: 'search', filterOps: [], sortable: false },
  },
};

const tags = ['reports'];
const read = { permission: 'enrollment.read' as const };
const readAll = { permission: 'enrollment.read' as const, requireUnscoped: true };
const REPORTS_PATH = '/deviceManagement/reports';
const EXPORTS = `${REPORTS_PATH}/exportJobs`;
const EXPORTS_CONTEXT = 'deviceManagement/reports/exportJobs';

function scopeOf(req: FastifyRequest): ReportScope {
  const actor = actorOf(req);
  return { tenantId: actor.tenantId, principal: actor.principal };
}

/** Report JSON as Intune's report actions return it: TotalRowCount, Schema and Values rows. */
function reportAction(data: ReportData, def: ReportDefinition) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const body = (req.body ?? {}) as ReportActionInput;
    const scope = scopeOf(req);
    data.assertAllowed(def, scope.principal);
    if (body.name != null && body.name !== def.name) throw badRequest(`Invalid value for property 'name': this action returns report '${def.name}'.`, 'name');
    if (body.groupBy && body.groupBy.length > 0) throw badRequest("Invalid value for property 'groupBy': grouping is not supported; use filter and orderBy.", 'groupBy');
    if (body.sessionId != null) throw badRequest("Invalid value for property 'sessionId': cached report sessions are not supported.", 'sessionId');
    const request = parseReportRequest(def, body);
    data.checkRequest(def, request);
    if (def.name === 'EnrollmentConfigurationPoliciesByDevice') {
      const ids = (topLevelComparisons(request.filter, 'DeviceId') ?? []).filter((x) => x.op === 'eq' && typeof x.value === 'string');
      if (ids.length !== 1) throw badRequest("Invalid value for property 'filter': name one device, e.g. \"DeviceId eq '{managedDeviceId}'\".", 'filter');
      await data.assertDeviceVisible(scope, ids[0]!.value as string);
    }
    const { total, rows } = await data.page(def, scope, request, body.skip ?? 0, body.top ?? 100);
    const columns = request.select.map((name) => def.columns.find((c) => c.name === name)!);
    const out: Record<string, unknown> = {
      TotalRowCount: total,
      Schema: columns.map((c) => ({ Column: c.name, PropertyType: c.type })),
      Values: rows.map((r) => columns.map((c) => r[c.name] ?? null)),
    };
    if (def.name === 'IncompleteUserEnrollments') out.Summary = (await data.incomplete(scope, request)).summary;
    // Intune streams report JSON as a file.
    return reply.type('application/octet-stream').send(JSON.stringify(out));
  };
}

/** Enrollment reports: failures, the per-device policy view, incomplete user enrollments, terms acceptance, exports. */
export function reportRoutes(data: ReportData, exports: ReportExports): FastifyPluginAsync {
  const withUrl = (req: FastifyRequest, r: ReportExportJobsTable) => ({
    '@odata.type': `#${EXPORT_JOB_TYPE}`,
    ...exportJobEntity(r),
    url: r.status === 'completed' ? resourceUrl(req, `deviceManagement/reports/exportJobs/${encodeURIComponent(r.id)}/content`) : null,
  });
  return async (app) => {
    // ---- the failures report as a collection ----
    const failures = `${REPORTS_PATH}/enrollmentFailures`;
    app.get(failures, { schema: { tags, querystring: ODataQueryString, description: 'OpenEnroll extension: one entry per failed enrollment attempt.' }, config: readAll }, async (req) =>
      listCollection(req, {
        model: enrollmentFailureModel,
        base: data.failuresBase(actorOf(req).tenantId),
        toEntity: (rows) => rows.map(failureEntity),
        contextFragment: 'deviceManagement/reports/enrollmentFailures',
      }),
    );
    app.get(`${failures}/$count`, { schema: { tags, querystring: ODataQueryString }, config: readAll }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, enrollmentFailureModel, data.failuresBase(actorOf(req).tenantId))),
    );
    app.get(`${failures}/:id`, { schema: { tags, params: IdParam }, config: readAll }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const row = await data.failuresBase(actorOf(req).tenantId).where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound(`Enrollment failure '${id}' was not found.`);
      return sendEntity(reply, req, 'deviceManagement/reports/enrollmentFailures', FAILURE_TYPE, failureEntity(row));
    });

    // ---- report actions ----
    app.post(`${REPORTS_PATH}/getEnrollmentConfigurationPoliciesByDevice`, { schema: { tags, body: ReportActionBody }, config: read }, reportAction(data, REPORTS.EnrollmentConfigurationPoliciesByDevice));
    app.post(`${REPORTS_PATH}/getEnrollmentFailuresReport`, { schema: { tags, body: ReportActionBody, description: 'OpenEnroll extension.' }, config: readAll }, reportAction(data, REPORTS.EnrollmentFailures));
    app.post(
      `${REPORTS_PATH}/getIncompleteUserEnrollmentsReport`,
      { schema: { tags, body: ReportActionBody, description: 'OpenEnroll extension: rows of incomplete attempts, plus a Summary with the tiles and daily lines.' }, config: readAll },
      reportAction(data, REPORTS.IncompleteUserEnrollments),
    );
    app.post(
      `${REPORTS_PATH}/getTermsAndConditionsAcceptanceReport`,
      { schema: { tags, body: ReportActionBody, description: 'OpenEnroll extension.' }, config: read },
      reportAction(data, REPORTS.TermsAndConditionsAcceptance),
    );

    // ---- export jobs ----
    app.get(EXPORTS, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) =>
      listCollection(req, { model: exportJobModel, base: exports.base(actorOf(req)), toEntity: (rows) => rows.map((r) => withUrl(req, r)), contextFragment: EXPORTS_CONTEXT }),
    );
    app.get(`${EXPORTS}/:id`, { schema: { tags, params: IdParam }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, EXPORTS_CONTEXT, EXPORT_JOB_TYPE, withUrl(req, await exports.get(actorOf(req), id)));
    });
    app.post(EXPORTS, { schema: { tags, body: ExportJobBody }, config: read }, async (req, reply) => {
      const row = await exports.create(actorOf(req), req.body as ExportJobInput);
      return sendEntity(reply, req, EXPORTS_CONTEXT, EXPORT_JOB_TYPE, withUrl(req, row), 201);
    });
    app.delete(`${EXPORTS}/:id`, { schema: { tags, params: IdParam }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await exports.delete(actorOf(req), id);
      return reply.code(204).send();
    });
    app.get(`${EXPORTS}/:id/content`, { schema: { tags, params: IdParam, description: 'OpenEnroll: the exported file (the job\'s url).' }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { csv, fileName } = await exports.content(actorOf(req), id);
      return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${fileName}"`).send(csv);
    });
  };
}

/** Graph's troubleshootingEvents (beta and v1.0): the failed enrollments as enrollmentTroubleshootingEvent. */
export function troubleshootingRoutes(data: ReportData): FastifyPluginAsync {
  const context = 'deviceManagement/troubleshootingEvents';
  return async (app) => {
    app.get(`/${context}`, { schema: { tags: ['troubleshootingEvents'], querystring: ODataQueryString }, config: readAll }, async (req) =>
      listCollection(req, { model: troubleshootingModel, base: data.failuresBase(actorOf(req).tenantId), toEntity: (rows) => rows.map(troubleshootingEntity), contextFragment: context }),
    );
    app.get(`/${context}/:id`, { schema: { tags: ['troubleshootingEvents'], params: IdParam }, config: readAll }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const row = await data.failuresBase(actorOf(req).tenantId).where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound(`Troubleshooting event '${id}' was not found.`);
      return sendEntity(reply, req, context, TROUBLESHOOTING_TYPE, troubleshootingEntity(row));
    });
  };
}
