import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { countResponse, listCollection, listInMemory } from '../../graph/collection.js';
import { actorOf, sendEntity } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { GraphBody, IdParam, Nullable, ODataQueryString, RoleScopeTagIds } from '../../graph/schemas.js';
import type { EnrollmentUserAssignmentsTable } from '../../store/schema.js';
import { targetEntity } from '../terms/user-targets.js';
import { APPLE_ASSIGNMENT_TYPE, APPLE_PROFILE_TYPE, ENROLLMENT_TYPES, PLATFORMS, PROFILE_LIMITS } from './rules.js';
import type { AppleEnrollmentTypeService, ProfileInput } from './service.js';

export const profileModel: EntityModel = {
  typeName: APPLE_PROFILE_TYPE,
  keyColumn: 'apple_enrollment_type_profiles.id',
  properties: {
    id: { type: 'string', column: 'apple_enrollment_type_profiles.id', filterOps: ['eq', 'ne'] },
    displayName: { type: 'string', column: 'display_name', caseInsensitive: true },
    description: { type: 'string', column: 'description', caseInsensitive: true },
    defaultEnrollmentType: { type: 'enum', column: 'default_enrollment_type', enumValues: ['unknown', ...ENROLLMENT_TYPES, 'unknownFutureValue'] },
    availableEnrollmentTypeOptions: { type: 'collection' },
    platform: { type: 'enum', column: 'platform', enumValues: PLATFORMS },
    priority: { type: 'int', column: 'priority' },
    createdDateTime: { type: 'datetime', column: 'created_at' },
    lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
    roleScopeTagIds: { type: 'collection' },
  },
};

const assignmentModel: EntityModel = {
  typeName: APPLE_ASSIGNMENT_TYPE,
  keyColumn: 'id',
  properties: { id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] }, target: { type: 'object' } },
};

const properties = {
  displayName: Type.Optional(Type.String({ minLength: 1, maxLength: PROFILE_LIMITS.displayName })),
  description: Type.Optional(Nullable(Type.String({ maxLength: PROFILE_LIMITS.description }))),
  defaultEnrollmentType: Type.Optional(Type.Enum([...ENROLLMENT_TYPES])),
  // Checked by the service, which names the offending option.
  availableEnrollmentTypeOptions: Type.Optional(Nullable(Type.Array(Type.Unknown(), { maxItems: 16 }))),
  platform: Type.Optional(Type.Enum([...PLATFORMS])),
  priority: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 2147483647 })),
  roleScopeTagIds: Type.Optional(RoleScopeTagIds),
  // Read-only properties clients copy back are accepted and ignored.
  id: Type.Optional(Type.String()),
  createdDateTime: Type.Optional(Type.String()),
  lastModifiedDateTime: Type.Optional(Type.String()),
};
const CreateBody = GraphBody({ ...properties, displayName: Type.String({ minLength: 1, maxLength: PROFILE_LIMITS.displayName }) });
const PatchBody = GraphBody(properties);
const PriorityBody = GraphBody({ priority: Type.Integer({ minimum: -2147483648, maximum: 2147483647 }) });
const AssignmentParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), assignmentId: Type.String({ minLength: 1, maxLength: 200 }) });
const AssignmentBody = GraphBody({ id: Type.Optional(Type.String()), target: Type.Unknown() });
const AssignmentPatchBody = GraphBody({ id: Type.Optional(Type.String()), target: Type.Optional(Type.Unknown()) });

function input(body: Record<string, unknown>): ProfileInput {
  const { id: _id, createdDateTime: _c, lastModifiedDateTime: _m, '@odata.type': _t, ...rest } = body;
  return rest as ProfileInput;
}

const tags = ['appleUserInitiatedEnrollmentProfiles'];
const read = { permission: 'enrollment.read' as const };
const write = { permission: 'enrollment.write' as const };
const BASE = '/deviceManagement/appleUserInitiatedEnrollmentProfiles';
const CONTEXT = 'deviceManagement/appleUserInitiatedEnrollmentProfiles';
const assignmentEntity = (r: EnrollmentUserAssignmentsTable) => ({ '@odata.type': `#${APPLE_ASSIGNMENT_TYPE}`, id: r.id, target: targetEntity(r) });

/** appleUserInitiatedEnrollmentProfiles with assignments and setPriority (graph §11, beta only). */
export function appleEnrollmentTypeRoutes(profiles: AppleEnrollmentTypeService): FastifyPluginAsync {
  const sub = (id: string) => `${CONTEXT}('${id}')/assignments`;
  return async (app) => {
    app.get(BASE, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      return listCollection(req, {
        model: profileModel,
        base: profiles.base(actor),
        toEntity: async (rows) => (await profiles.toEntities(actor.tenantId, rows)).map((e) => ({ '@odata.type': `#${APPLE_PROFILE_TYPE}`, ...e })),
        contextFragment: CONTEXT,
      });
    });
    app.get(`${BASE}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, profileModel, profiles.base(actorOf(req)))),
    );
    app.get(`${BASE}/:id`, { schema: { tags, params: IdParam }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, CONTEXT, APPLE_PROFILE_TYPE, await profiles.get(actorOf(req), id));
    });
    app.post(BASE, { schema: { tags, body: CreateBody }, config: write }, async (req, reply) => {
      const body = input(req.body as Record<string, unknown>) as ProfileInput & { displayName: string };
      return sendEntity(reply, req, CONTEXT, APPLE_PROFILE_TYPE, await profiles.create(actorOf(req), body), 201);
    });
    app.patch(`${BASE}/:id`, { schema: { tags, params: IdParam, body: PatchBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, CONTEXT, APPLE_PROFILE_TYPE, await profiles.update(actorOf(req), id, input(req.body as Record<string, unknown>)));
    });
    app.delete(`${BASE}/:id`, { schema: { tags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await profiles.delete(actorOf(req), id);
      return reply.code(204).send();
    });
    app.post(`${BASE}/:id/setPriority`, { schema: { tags, params: IdParam, body: PriorityBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await profiles.setPriority(actorOf(req), id, (req.body as { priority: number }).priority);
      return reply.code(204).send();
    });

    app.get(`${BASE}/:id/assignments`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const rows = await profiles.listAssignments(actorOf(req), id);
      return listInMemory(req, { model: assignmentModel, items: rows.map(assignmentEntity), contextFragment: sub(id) });
    });
    app.get(`${BASE}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: read }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      return sendEntity(reply, req, sub(id), APPLE_ASSIGNMENT_TYPE, assignmentEntity(await profiles.getAssignment(actorOf(req), id, assignmentId)));
    });
    app.post(`${BASE}/:id/assignments`, { schema: { tags, params: IdParam, body: AssignmentBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const row = await profiles.createAssignment(actorOf(req), id, (req.body as { target: unknown }).target);
      return sendEntity(reply, req, sub(id), APPLE_ASSIGNMENT_TYPE, assignmentEntity(row), 201);
    });
    app.patch(`${BASE}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams, body: AssignmentPatchBody }, config: write }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      const { target } = req.body as { target?: unknown };
      const actor = actorOf(req);
      const row = target === undefined ? await profiles.getAssignment(actor, id, assignmentId) : await profiles.updateAssignment(actor, id, assignmentId, target);
      return sendEntity(reply, req, sub(id), APPLE_ASSIGNMENT_TYPE, assignmentEntity(row));
    });
    app.delete(`${BASE}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: write }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      await profiles.deleteAssignment(actorOf(req), id, assignmentId);
      return reply.code(204).send();
    });
  };
}
