import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { countResponse, listCollection, listInMemory } from '../../graph/collection.js';
import { actorOf, sendEntity, type ApiVersion } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { GraphBody, IdParam, Nullable, ODataQueryString, RoleScopeTagIds } from '../../graph/schemas.js';
import type { EnrollmentUserAssignmentsTable } from '../../store/schema.js';
import {
  ACCEPTANCE_STATUS_TYPE,
  TERMS_ASSIGNMENT_TYPE,
  TERMS_GROUP_ASSIGNMENT_TYPE,
  TERMS_LIMITS,
  TERMS_TYPE,
  toAcceptanceEntity,
} from './rules.js';
import type { TermsInput, TermsService } from './service.js';
import { targetEntity } from './user-targets.js';

export function termsModel(version: ApiVersion): EntityModel {
  return {
    typeName: TERMS_TYPE,
    keyColumn: 'terms_and_conditions.id',
    properties: {
      id: { type: 'string', column: 'terms_and_conditions.id', filterOps: ['eq', 'ne'] },
      createdDateTime: { type: 'datetime', column: 'created_at' },
      lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
      ...(version === 'beta' ? { modifiedDateTime: { type: 'datetime' as const, column: 'updated_at' } } : {}),
      displayName: { type: 'string', column: 'display_name', caseInsensitive: true },
      description: { type: 'string', column: 'description', caseInsensitive: true },
      title: { type: 'string', column: 'title', caseInsensitive: true },
      bodyText: { type: 'string', column: 'body_text', filterOps: ['contains'], sortable: false },
      acceptanceStatement: { type: 'string', column: 'acceptance_statement', filterOps: ['contains'], sortable: false },
      version: { type: 'int', column: 'version' },
      ...(version === 'beta' ? { roleScopeTagIds: { type: 'collection' as const } } : {}),
    },
  };
}

export const acceptanceModel: EntityModel = {
  typeName: ACCEPTANCE_STATUS_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] },
    userDisplayName: { type: 'string', column: 'user_display_name', caseInsensitive: true },
    acceptedVersion: { type: 'int', column: 'accepted_version' },
    acceptedDateTime: { type: 'datetime', column: 'accepted_at' },
    userPrincipalName: { type: 'string', column: 'user_principal_name', caseInsensitive: true },
  },
};

const assignmentModel: EntityModel = {
  typeName: TERMS_ASSIGNMENT_TYPE,
  keyColumn: 'id',
  properties: { id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] }, target: { type: 'object' } },
};

const groupAssignmentModel: EntityModel = {
  typeName: TERMS_GROUP_ASSIGNMENT_TYPE,
  keyColumn: 'id',
  properties: { id: { type: 'string', column: 'id', filterOps: ['eq', 'ne'] }, targetGroupId: { type: 'string', column: 'targetGroupId', filterOps: ['eq', 'ne'] } },
};

const text = (max: number, min = 0) => Type.String({ minLength: min, maxLength: max });

function termsProperties(version: ApiVersion) {
  return {
    displayName: Type.Optional(text(TERMS_LIMITS.displayName, 1)),
    description: Type.Optional(Nullable(text(TERMS_LIMITS.description))),
    title: Type.Optional(Nullable(text(TERMS_LIMITS.title))),
    bodyText: Type.Optional(Nullable(text(TERMS_LIMITS.bodyText))),
    acceptanceStatement: Type.Optional(Nullable(text(TERMS_LIMITS.acceptanceStatement))),
    version: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Set to the current version + 1 to require users to accept again.' })),
    // Clients send back what they read; read-only properties are accepted and ignored.
    id: Type.Optional(Type.String()),
    createdDateTime: Type.Optional(Type.String()),
    lastModifiedDateTime: Type.Optional(Type.String()),
    ...(version === 'beta' ? { modifiedDateTime: Type.Optional(Type.String()), roleScopeTagIds: Type.Optional(RoleScopeTagIds) } : {}),
  };
}

const READ_ONLY = ['id', 'createdDateTime', 'lastModifiedDateTime', 'modifiedDateTime'] as const;
function withoutReadOnly(body: Record<string, unknown>): TermsInput {
  const out = { ...body };
  for (const k of [...READ_ONLY, '@odata.type']) delete out[k];
  return out as TermsInput;
}

const AssignmentParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), assignmentId: Type.String({ minLength: 1, maxLength: 200 }) });
const StatusParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), statusId: Type.String({ minLength: 1, maxLength: 500 }) });
const AssignmentBody = GraphBody({ id: Type.Optional(Type.String()), target: Type.Unknown() });
const AssignmentPatchBody = GraphBody({ id: Type.Optional(Type.String()), target: Type.Optional(Type.Unknown()) });
const GroupAssignmentBody = GraphBody({ id: Type.Optional(Type.String()), targetGroupId: text(200, 1) });
const GroupAssignmentPatchBody = GraphBody({ id: Type.Optional(Type.String()), targetGroupId: Type.Optional(text(200, 1)) });
const AcceptanceBody = GraphBody({
  userPrincipalName: text(1024, 1),
  acceptedVersion: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })),
});

const tags = ['termsAndConditions'];
const read = { permission: 'enrollment.read' as const };
const write = { permission: 'enrollment.write' as const };
const BASE = '/deviceManagement/termsAndConditions';
const CONTEXT = 'deviceManagement/termsAndConditions';

const assignmentEntity = (r: EnrollmentUserAssignmentsTable) => ({ '@odata.type': `#${TERMS_ASSIGNMENT_TYPE}`, id: r.id, target: targetEntity(r) });
const groupAssignmentEntity = (r: EnrollmentUserAssignmentsTable) => ({ '@odata.type': `#${TERMS_GROUP_ASSIGNMENT_TYPE}`, id: r.id, targetGroupId: r.group_id });

/** termsAndConditions with assignments, legacy groupAssignments and acceptanceStatuses (graph §7). */
export function termsRoutes(terms: TermsService, version: ApiVersion): FastifyPluginAsync {
  const model = termsModel(version);
  const CreateBody = GraphBody({ ...termsProperties(version), displayName: text(TERMS_LIMITS.displayName, 1) });
  const PatchBody = GraphBody(termsProperties(version));
  const sub = (id: string, nav: string) => `${CONTEXT}('${id}')/${nav}`;

  return async (app) => {
    app.get(BASE, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      return listCollection(req, {
        model,
        base: terms.base(actor),
        toEntity: async (rows) => (await terms.toEntities(actor.tenantId, rows, version)).map((e) => ({ '@odata.type': `#${TERMS_TYPE}`, ...e })),
        contextFragment: CONTEXT,
      });
    });
    app.get(`${BASE}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, model, terms.base(actorOf(req)))),
    );
    app.get(`${BASE}/:id`, { schema: { tags, params: IdParam }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, CONTEXT, TERMS_TYPE, await terms.get(actorOf(req), id, version));
    });
    app.post(BASE, { schema: { tags, body: CreateBody }, config: write }, async (req, reply) => {
      const input = withoutReadOnly(req.body as Record<string, unknown>) as TermsInput & { displayName: string };
      return sendEntity(reply, req, CONTEXT, TERMS_TYPE, await terms.create(actorOf(req), input, version), 201);
    });
    app.patch(`${BASE}/:id`, { schema: { tags, params: IdParam, body: PatchBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, CONTEXT, TERMS_TYPE, await terms.update(actorOf(req), id, withoutReadOnly(req.body as Record<string, unknown>), version));
    });
    app.delete(`${BASE}/:id`, { schema: { tags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await terms.delete(actorOf(req), id);
      return reply.code(204).send();
    });

    // ---- assignments ----
    app.get(`${BASE}/:id/assignments`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const rows = await terms.listAssignments(actorOf(req), id);
      return listInMemory(req, { model: assignmentModel, items: rows.map(assignmentEntity), contextFragment: sub(id, 'assignments') });
    });
    app.get(`${BASE}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: read }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      return sendEntity(reply, req, sub(id, 'assignments'), TERMS_ASSIGNMENT_TYPE, assignmentEntity(await terms.getAssignment(actorOf(req), id, assignmentId)));
    });
    app.post(`${BASE}/:id/assignments`, { schema: { tags, params: IdParam, body: AssignmentBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const row = await terms.createAssignment(actorOf(req), id, (req.body as { target: unknown }).target);
      return sendEntity(reply, req, sub(id, 'assignments'), TERMS_ASSIGNMENT_TYPE, assignmentEntity(row), 201);
    });
    app.patch(`${BASE}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams, body: AssignmentPatchBody }, config: write }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      const { target } = req.body as { target?: unknown };
      const actor = actorOf(req);
      const row = target === undefined ? await terms.getAssignment(actor, id, assignmentId) : await terms.updateAssignment(actor, id, assignmentId, target);
      return sendEntity(reply, req, sub(id, 'assignments'), TERMS_ASSIGNMENT_TYPE, assignmentEntity(row));
    });
    app.delete(`${BASE}/:id/assignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: write }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      await terms.deleteAssignment(actorOf(req), id, assignmentId);
      return reply.code(204).send();
    });

    // ---- groupAssignments: the group targets of the same set, in the legacy shape ----
    app.get(`${BASE}/:id/groupAssignments`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const rows = (await terms.listAssignments(actorOf(req), id)).filter((r) => r.target_type === 'group');
      return listInMemory(req, { model: groupAssignmentModel, items: rows.map(groupAssignmentEntity), contextFragment: sub(id, 'groupAssignments') });
    });
    app.get(`${BASE}/:id/groupAssignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: read }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      const row = await terms.getGroupAssignment(actorOf(req), id, assignmentId);
      return sendEntity(reply, req, sub(id, 'groupAssignments'), TERMS_GROUP_ASSIGNMENT_TYPE, groupAssignmentEntity(row));
    });
    app.get(`${BASE}/:id/groupAssignments/:assignmentId/termsAndConditions`, { schema: { tags, params: AssignmentParams }, config: read }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      const actor = actorOf(req);
      await terms.getGroupAssignment(actor, id, assignmentId);
      return sendEntity(reply, req, CONTEXT, TERMS_TYPE, await terms.get(actor, id, version));
    });
    app.post(`${BASE}/:id/groupAssignments`, { schema: { tags, params: IdParam, body: GroupAssignmentBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { targetGroupId } = req.body as { targetGroupId: string };
      const row = await terms.createAssignment(actorOf(req), id, { '@odata.type': '#microsoft.graph.groupAssignmentTarget', groupId: targetGroupId });
      return sendEntity(reply, req, sub(id, 'groupAssignments'), TERMS_GROUP_ASSIGNMENT_TYPE, groupAssignmentEntity(row), 201);
    });
    app.patch(`${BASE}/:id/groupAssignments/:assignmentId`, { schema: { tags, params: AssignmentParams, body: GroupAssignmentPatchBody }, config: write }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      const { targetGroupId } = req.body as { targetGroupId?: string };
      const actor = actorOf(req);
      const row =
        targetGroupId === undefined ? await terms.getGroupAssignment(actor, id, assignmentId) : await terms.updateGroupAssignment(actor, id, assignmentId, targetGroupId);
      return sendEntity(reply, req, sub(id, 'groupAssignments'), TERMS_GROUP_ASSIGNMENT_TYPE, groupAssignmentEntity(row));
    });
    app.delete(`${BASE}/:id/groupAssignments/:assignmentId`, { schema: { tags, params: AssignmentParams }, config: write }, async (req, reply) => {
      const { id, assignmentId } = req.params as { id: string; assignmentId: string };
      await terms.deleteAssignment(actorOf(req), id, assignmentId, true);
      return reply.code(204).send();
    });

    // ---- acceptanceStatuses ----
    app.get(`${BASE}/:id/acceptanceStatuses`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const actor = actorOf(req);
      await terms.row(actor, id);
      return listCollection(req, {
        model: acceptanceModel,
        base: terms.acceptanceBase(actor, id),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${ACCEPTANCE_STATUS_TYPE}`, ...toAcceptanceEntity(r) })),
        contextFragment: sub(id, 'acceptanceStatuses'),
      });
    });
    app.get(`${BASE}/:id/acceptanceStatuses/$count`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const actor = actorOf(req);
      await terms.row(actor, id);
      return reply.type('text/plain').send(await countResponse(req, acceptanceModel, terms.acceptanceBase(actor, id)));
    });
    app.get(`${BASE}/:id/acceptanceStatuses/:statusId`, { schema: { tags, params: StatusParams }, config: read }, async (req, reply) => {
      const { id, statusId } = req.params as { id: string; statusId: string };
      const row = await terms.getAcceptance(actorOf(req), id, statusId);
      return sendEntity(reply, req, sub(id, 'acceptanceStatuses'), ACCEPTANCE_STATUS_TYPE, toAcceptanceEntity(row));
    });
    app.get(`${BASE}/:id/acceptanceStatuses/:statusId/termsAndConditions`, { schema: { tags, params: StatusParams }, config: read }, async (req, reply) => {
      const { id, statusId } = req.params as { id: string; statusId: string };
      const actor = actorOf(req);
      await terms.getAcceptance(actor, id, statusId);
      return sendEntity(reply, req, CONTEXT, TERMS_TYPE, await terms.get(actor, id, version));
    });
    app.post(`${BASE}/:id/acceptanceStatuses`, { schema: { tags, params: IdParam, body: AcceptanceBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const row = await terms.recordAcceptance(actorOf(req), id, req.body as { userPrincipalName: string; acceptedVersion?: number });
      return sendEntity(reply, req, sub(id, 'acceptanceStatuses'), ACCEPTANCE_STATUS_TYPE, toAcceptanceEntity(row), 201);
    });
    app.delete(`${BASE}/:id/acceptanceStatuses/:statusId`, { schema: { tags, params: StatusParams }, config: write }, async (req, reply) => {
      const { id, statusId } = req.params as { id: string; statusId: string };
      await terms.deleteAcceptance(actorOf(req), id, statusId);
      return reply.code(204).send();
    });
  };
}
