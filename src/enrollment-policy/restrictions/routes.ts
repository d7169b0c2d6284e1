import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { applySelect, countResponse, listCollection, listInMemory } from '../../graph/collection.js';
import { badRequest } from '../../graph/errors.js';
import { actorOf, contextUrl, type ApiVersion } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { parseQueryOptions } from '../../graph/odata/query-options.js';
import { GraphBody, IdParam, ODataQueryString } from '../../graph/schemas.js';
import { FilterRuleError, parseFilterRule } from '../evaluation/filters.js';
import type { AssignmentFilterService } from './filters-service.js';
import { FILTER_PLATFORMS, FILTER_TYPE } from './filters-model.js';
import {
  ASSIGNMENT_TYPE,
  CONFIGURATION_BASE_TYPE,
  CONFIGURATION_TYPE_VALUES,
  parseAssignment,
  parseCreateConfiguration,
  PLATFORM_TYPE_VALUES,
} from './model.js';
import type { RestrictionService } from './service.js';

const COLLECTION = 'deviceManagement/deviceEnrollmentConfigurations';
const FILTERS = 'deviceManagement/assignmentFilters';
const read = { permission: 'enrollment.read' as const };
const write = { permission: 'enrollment.write' as const };
const tags = ['deviceEnrollmentConfigurations'];
const filterTags = ['assignmentFilters'];

/** Bodies are polymorphic: the services validate them and name the property at fault. */
const AnyBody = Type.Object({}, { additionalProperties: true });
const AssignmentParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), assignmentId: Type.String({ minLength: 1, maxLength: 300 }) });
const SetPriorityBody = GraphBody({ priority: Type.Integer({ minimum: -2147483648, maximum: 2147483647 }) });
const AssignBody = GraphBody({ enrollmentConfigurationAssignments: Type.Array(Type.Unknown(), { maxItems: 1000 }) });
const PayloadLinksBody = GraphBody({ payloadIds: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 1000 }) });
const ValidateFilterBody = GraphBody({ deviceAndAppManagementAssignmentFilter: Type.Object({ rule: Type.String() }, { additionalProperties: true }) });
const SuggestedLimitQuery = Type.Object({ enrollmentType: Type.Optional(Type.String()) }, { additionalProperties: true });

export function configurationModel(version: ApiVersion): EntityModel {
  const common: EntityModel['properties'] = {
    id: { type: 'string', column: 'enrollment_configurations.id', filterOps: ['eq', 'ne'] },
    displayName: { type: 'string', column: 'display_name', caseInsensitive: true },
    description: { type: 'string', column: 'description', filterOps: [], sortable: false },
    priority: { type: 'int', column: 'priority' },
    version: { type: 'int', column: 'version' },
    createdDateTime: { type: 'datetime', column: 'created_at' },
    lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
    // Subtype properties: selectable; `limit` is filterable too.
    limit: { type: 'int', column: 'device_limit' },
    iosRestriction: { type: 'object' },
    windowsRestriction: { type: 'object' },
    windowsMobileRestriction: { type: 'object' },
    androidRestriction: { type: 'object' },
    macOSRestriction: { type: 'object' },
  };
  if (version === 'v1.0') return { typeName: CONFIGURATION_BASE_TYPE, keyColumn: 'enrollment_configurations.id', properties: common };
  return {
    typeName: CONFIGURATION_BASE_TYPE,
    keyColumn: 'enrollment_configurations.id',
    properties: {
      ...common,
      deviceEnrollmentConfigurationType: { type: 'enum', column: 'configuration_type', enumValues: CONFIGURATION_TYPE_VALUES },
      platformType: { type: 'enum', column: 'platform_type', enumValues: PLATFORM_TYPE_VALUES },
      roleScopeTagIds: { type: 'collection' },
      platformRestriction: { type: 'object' },
      windowsHomeSkuRestriction: { type: 'object' },
      androidForWorkRestriction: { type: 'object' },
      macRestriction: { type: 'object' },
      tvosRestriction: { type: 'object' },
      visionOSRestriction: { type: 'object' },
    },
  };
}

const assignmentModel = (version: ApiVersion): EntityModel => ({
  typeName: ASSIGNMENT_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] },
    target: { type: 'object' },
    ...(version === 'beta'
      ? { source: { type: 'enum', column: 'source', enumValues: ['direct', 'policySets'] }, sourceId: { type: 'string', column: 'sourceId' } }
      : {}),
  },
});

export const filterModel: EntityModel = {
  typeName: FILTER_TYPE,
  keyColumn: 'assignment_filters.id',
  properties: {
    id: { type: 'string', column: 'assignment_filters.id', filterOps: ['eq', 'ne'] },
    displayName: { type: 'string', column: 'display_name', caseInsensitive: true },
    description: { type: 'string', column: 'description', filterOps: [], sortable: false },
    platform: { type: 'enum', column: 'platform', enumValues: FILTER_PLATFORMS },
    rule: { type: 'string', column: 'rule', filterOps: ['contains'], sortable: false },
    createdDateTime: { type: 'datetime', column: 'created_at' },
    lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
    assignmentFilterManagementType: { type: 'string' },
    roleScopeTags: { type: 'collection' },
  },
};

/**
 * `$expand=assignments` is widely used by backup tools on this collection, so it is supported here
 * as a special case; any other expansion is refused like everywhere else.
 */
function takeExpand(raw: unknown): { rest: Record<string, unknown>; expand: boolean } {
  const { $expand, ...rest } = (raw ?? {}) as Record<string, unknown>;
  if ($expand === undefined) return { rest, expand: false };
  if (typeof $expand !== 'string') throw badRequest("Query option '$expand' was specified more than once.", '$expand');
  for (const item of $expand.split(',').map((s) => s.trim())) {
    if (item !== 'assignments') {
      throw badRequest(`Navigation property '${item}' can't be expanded on '${CONFIGURATION_BASE_TYPE}'; only 'assignments' can.`, '$expand');
    }
  }
  return { rest, expand: true };
}

const withContext = (req: FastifyRequest, fragment: string, entity: Record<string, unknown>) => ({
  '@odata.context': contextUrl(req, `${fragment}/$entity`),
  ...entity,
});

const assignmentsFragment = (id: string) => `${COLLECTION}('${id}')/assignments`;

/** deviceEnrollmentConfigurations (restrictions) under one Graph version; beta adds the functions v1.0 lacks. */
export function restrictionRoutes(service: RestrictionService, version: ApiVersion): FastifyPluginAsync {
  const model = configurationModel(version);
  const assignments = assignmentModel(version);
  return async (app) => {
    app.get(`/${COLLECTION}`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      await service.ensureDefaults(actor.tenantId);
      const { rest, expand } = takeExpand(req.query);
      const query = parseQueryOptions(model, rest);
      let base = service.base(actor, version);
      // Without $orderby, list each priority list in priority order.
      if (query.orderBy.length === 0) base = base.orderBy('priority_list').orderBy('priority');
      // $select would drop the expanded navigation: select here instead, keeping `assignments`.
      const selectHere = expand && query.select !== undefined;
      const body = await listCollection(req, {
        model,
        base,
        query: selectHere ? { ...query, select: undefined } : query,
        toEntity: (rows) => service.toEntities(actor.tenantId, rows, version, expand),
        contextFragment: selectHere ? `${COLLECTION}(${query.select!.join(',')})` : COLLECTION,
      });
      if (selectHere) body.value = body.value.map((e) => ({ ...applySelect(e, query.select), assignments: e.assignments }));
      return body;
    });

    app.get(`/${COLLECTION}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) => {
      const actor = actorOf(req);
      await service.ensureDefaults(actor.tenantId);
      return reply.type('text/plain').send(await countResponse(req, model, service.base(actor, version)));
    });

    app.get(`/${COLLECTION}/:id`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const { rest, expand } = takeExpand(req.query);
      const { select } = parseQueryOptions(model, rest);
      const entity = await service.get(actorOf(req), id, version, expand);
      const selected = applySelect(entity, select);
      if (expand) selected.assignments = entity.assignments;
      return withContext(req, select ? `${COLLECTION}(${select.join(',')})` : COLLECTION, selected);
    });

    app.post(`/${COLLECTION}`, { schema: { tags, body: AnyBody }, config: write }, async (req, reply) => {
      const input = parseCreateConfiguration(req.body, version);
      return reply.code(201).send(withContext(req, COLLECTION, await service.create(actorOf(req), input, version)));
    });

    app.patch(`/${COLLECTION}/:id`, { schema: { tags, params: IdParam, body: AnyBody }, config: write }, async (req) => {
      const { id } = req.params as { id: string };
      return withContext(req, COLLECTION, await service.update(actorOf(req), id, req.body, version));
    });

    app.delete(`/${COLLECTION}/:id`, { schema: { tags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await service.delete(actorOf(req), id, version);
      return reply.code(204).send();
    });

    app.post(`/${COLLECTION}/:id/setPriority`, { schema: { tags, params: IdParam, body: SetPriorityBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await service.setPriority(actorOf(req), id, (req.body as { priority: number }).priority, version);
      return reply.code(204).send();
    });

    app.post(`/${COLLECTION}/:id/assign`, { schema: { tags, params: IdParam, body: AssignBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const items = (req.body as { enrollmentConfigurationAssignments: unknown[] }).enrollmentConfigurationAssignments.map((v, i) => {
        const path = `enrollmentConfigurationAssignments[${i}]`;
        return { input: parseAssignment(path, v), path: `${path}.target` };
      });
      await service.assign(actorOf(req), id, items, version);
      return reply.code(204).send();
    });

    app.get(`/${COLLECTION}/:id/assignments`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const items = await service.listAssignments(actorOf(req), id, version);
      return listInMemory(req, { model: assignments, items, contextFragment: assignmentsFragment(id) });
    });

    app.get(`/${COLLECTION}/:id/assignments/$count`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const items = await service.listAssignments(actorOf(req), id, version);
      const body = listInMemory(req, { model: assignments, items, contextFragment: assignmentsFragment(id) });
      return reply.type('text/plain').send(String(body.value.length));
    });

    app.post(`/${COLLECTION}/:id/assignments`, { schema: { tags, params: IdParam, body: AnyBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const input = parseAssignment('', req.body);
      return reply.code(201).send(withContext(req, assignmentsFragment(id), await service.createAssignment(actorOf(req), id, input, version)));
    });

    app.get(`/${COLLECTION}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: read }, async (req) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      return withContext(req, assignmentsFragment(id), await service.getAssignment(actorOf(req), id, assignmentId, version));
    });

    app.patch(`/${COLLECTION}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams, body: AnyBody }, config: write }, async (req) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      const input = parseAssignment('', req.body);
      if (input.id !== undefined && input.id !== assignmentId) throw badRequest("Property 'id' is read-only and can't be changed.", 'id');
      return withContext(req, assignmentsFragment(id), await service.updateAssignment(actorOf(req), id, assignmentId, input, version));
    });

    app.delete(`/${COLLECTION}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: write }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      await service.deleteAssignment(actorOf(req), id, assignmentId, version);
      return reply.code(204).send();
    });

    if (version !== 'beta') return;

    app.post(`/${COLLECTION}/hasPayloadLinks`, { schema: { tags, body: PayloadLinksBody }, config: read }, async (req) => ({
      '@odata.context': contextUrl(req, 'Collection(microsoft.graph.hasPayloadLinkResultItem)'),
      value: service.hasPayloadLinks((req.body as { payloadIds: string[] }).payloadIds),
    }));

    app.get('/deviceManagement/getSuggestedEnrollmentLimit', { schema: { tags, querystring: SuggestedLimitQuery }, config: read }, async (req) => {
      const { enrollmentType } = req.query as { enrollmentType?: string };
      if (enrollmentType === undefined || enrollmentType.trim() === '') {
        throw badRequest("Parameter 'enrollmentType' is required, e.g. getSuggestedEnrollmentLimit(enrollmentType='appleBulkWithUser').", 'enrollmentType');
      }
      if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(enrollmentType)) throw badRequest(`Invalid value '${enrollmentType}' for parameter 'enrollmentType'.`, 'enrollmentType');
      return {
        '@odata.context': contextUrl(req, 'microsoft.graph.suggestedEnrollmentLimit'),
        suggestedDailyLimit: await service.suggestedEnrollmentLimit(actorOf(req)),
      };
    });
  };
}

/** Assignment filters (beta only, like Graph). */
export function assignmentFilterRoutes(filters: AssignmentFilterService): FastifyPluginAsync {
  return async (app) => {
    app.get(`/${FILTERS}`, { schema: { tags: filterTags, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      return listCollection(req, { model: filterModel, base: filters.base(actor), toEntity: (rows) => filters.toEntities(actor.tenantId, rows), contextFragment: FILTERS });
    });

    app.get(`/${FILTERS}/$count`, { schema: { tags: filterTags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, filterModel, filters.base(actorOf(req)))),
    );

    app.get(`/${FILTERS}/:id`, { schema: { tags: filterTags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const { select } = parseQueryOptions(filterModel, req.query as Record<string, unknown>);
      return withContext(req, select ? `${FILTERS}(${select.join(',')})` : FILTERS, applySelect(await filters.get(actorOf(req), id), select));
    });

    app.post(`/${FILTERS}`, { schema: { tags: filterTags, body: AnyBody }, config: write }, async (req, reply) =>
      reply.code(201).send(withContext(req, FILTERS, await filters.create(actorOf(req), req.body))),
    );

    app.patch(`/${FILTERS}/:id`, { schema: { tags: filterTags, params: IdParam, body: AnyBody }, config: write }, async (req) => {
      const { id } = req.params as { id: string };
      return withContext(req, FILTERS, await filters.update(actorOf(req), id, req.body));
    });

    app.delete(`/${FILTERS}/:id`, { schema: { tags: filterTags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await filters.delete(actorOf(req), id);
      return reply.code(204).send();
    });

    // Checks a rule without saving it (Intune's rule editor calls this as the admin types).
    app.post(`/${FILTERS}/validateFilter`, { schema: { tags: filterTags, body: ValidateFilterBody }, config: read }, async (req) => {
      const { rule } = (req.body as { deviceAndAppManagementAssignmentFilter: { rule: string } }).deviceAndAppManagementAssignmentFilter;
      let isValidRule = true;
      try {
        parseFilterRule(rule);
      } catch (err) {
        if (!(err instanceof FilterRuleError)) throw err;
        isValidRule = false;
      }
      return { '@odata.context': contextUrl(req, 'microsoft.graph.assignmentFilterValidationResult'), isValidRule };
    });
  };
}
