import type { FastifyPluginAsync } from 'fastify';
import { actorOf, sendEntity } from '../graph/http.js';
import { countResponse, listCollection } from '../graph/collection.js';
import { notFound } from '../graph/errors.js';
import type { EntityModel } from '../graph/odata/model.js';
import { IdParam, ODataQueryString } from '../graph/schemas.js';
import type { Core, OpenEnrollModule } from '../server/module.js';
import type { Store } from '../store/db.js';
import { auditEventEntity } from './audit-log.js';

export const AUDIT_EVENT_TYPE = 'microsoft.graph.auditEvent';

export const auditEventModel: EntityModel = {
  typeName: AUDIT_EVENT_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id' },
    displayName: { type: 'string', column: 'display_name' },
    componentName: { type: 'string', column: 'component_name' },
    actor: { type: 'object' },
    activity: { type: 'string', column: 'activity' },
    activityDateTime: { type: 'datetime', column: 'activity_date_time' },
    activityType: { type: 'string', column: 'activity_type' },
    activityOperationType: { type: 'string', column: 'activity_operation_type' },
    activityResult: { type: 'string', column: 'activity_result' },
    correlationId: { type: 'string', column: 'correlation_id' },
    resources: { type: 'collection' },
    category: { type: 'string', column: 'category' },
    // Flattened paths for the common audit questions: "what happened to X", "what did Y do".
    'resources/resourceId': { type: 'string', column: 'resource_id', filterOnly: true, filterOps: ['eq'] },
    'resources/type': { type: 'string', column: 'resource_type', filterOnly: true, filterOps: ['eq'] },
    'actor/id': { type: 'string', column: 'actor_id', filterOnly: true, filterOps: ['eq'] },
  },
  defaultPageSize: 100,
};

const CONTEXT = 'deviceManagement/auditEvents';
const tags = ['auditEvents'];

function auditRoutes(store: Store): FastifyPluginAsync {
  const base = (tenantId: string) => store.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', tenantId);
  return async (app) => {
    const config = { permission: 'audit.read' as const, requireUnscoped: true };
    app.get('/deviceManagement/auditEvents', { schema: { tags, querystring: ODataQueryString }, config }, async (req) =>
      listCollection(req, {
        model: auditEventModel,
        base: base(actorOf(req).tenantId),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${AUDIT_EVENT_TYPE}`, ...auditEventEntity(r) })),
        contextFragment: CONTEXT,
      }),
    );
    app.get('/deviceManagement/auditEvents/$count', { schema: { tags, querystring: ODataQueryString }, config }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, auditEventModel, base(actorOf(req).tenantId))),
    );
    app.get('/deviceManagement/auditEvents/:id', { schema: { tags, params: IdParam }, config }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const row = await base(actorOf(req).tenantId).where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound(`Audit event '${id}' was not found.`);
      return sendEntity(reply, req, CONTEXT, AUDIT_EVENT_TYPE, auditEventEntity(row));
    });
  };
}

export function createAuditModule(core: Core): OpenEnrollModule {
  return { name: 'audit', adminRoutes: [{ versions: ['beta'], plugin: auditRoutes(core.store) }] };
}
