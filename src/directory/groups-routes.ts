import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { actorOf, sendEntity, type ApiVersion } from '../graph/http.js';
import { countResponse, listCollection } from '../graph/collection.js';
import { GraphBody, IdParam, Nullable, ODataQueryString, ODataRefBody } from '../graph/schemas.js';
import { GROUP_LIMITS, GROUP_TYPES, PROCESSING_STATES } from './directory-rules.js';
import { DEVICE_TYPE, GROUP_TYPE, groupModel, memberModel, toDeviceMember, toGroup, toUser, USER_TYPE } from './entities.js';
import type { CreateGroupInput, GroupInput, GroupService } from './groups-service.js';
import { RULE_LIMITS } from './membership-rules.js';

const groupProperties = {
  displayName: Type.Optional(Type.String({ minLength: 1, maxLength: GROUP_LIMITS.displayName })),
  description: Type.Optional(Nullable(Type.String({ maxLength: GROUP_LIMITS.description }))),
  mailNickname: Type.Optional(Type.String({ minLength: 1, maxLength: GROUP_LIMITS.mailNickname })),
  mailEnabled: Type.Optional(Type.Boolean()),
  securityEnabled: Type.Optional(Type.Boolean()),
  groupTypes: Type.Optional(Type.Array(Type.Enum([...GROUP_TYPES]), { maxItems: GROUP_TYPES.length, uniqueItems: true })),
  membershipRule: Type.Optional(Nullable(Type.String({ maxLength: RULE_LIMITS.maxLength }))),
  membershipRuleProcessingState: Type.Optional(Nullable(Type.Enum([...PROCESSING_STATES]))),
};
const CreateBody = GraphBody({ ...groupProperties, displayName: Type.String({ minLength: 1, maxLength: GROUP_LIMITS.displayName }) });
const PatchBody = GraphBody({ ...groupProperties, id: Type.Optional(Type.String()), createdDateTime: Type.Optional(Type.String()) });
const MemberParams = Type.Object({ id: IdParam.properties.id, memberId: IdParam.properties.id });

const tags = ['groups'];
const read = { permission: 'directory.read' as const };
const write = { permission: 'directory.write' as const };

export function groupRoutes(groups: GroupService, version: ApiVersion): FastifyPluginAsync {
  return async (app) => {
    app.get('/groups', { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) =>
      listCollection(req, {
        model: groupModel,
        base: groups.base(actorOf(req)),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${GROUP_TYPE}`, ...toGroup(r) })),
        contextFragment: 'groups',
      }),
    );
    app.get('/groups/$count', { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, groupModel, groups.base(actorOf(req)))),
    );
    app.get('/groups/:id', { schema: { tags, params: IdParam }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, 'groups', GROUP_TYPE, await groups.get(actorOf(req), id));
    });
    app.post('/groups', { schema: { tags, body: CreateBody }, config: write }, async (req, reply) =>
      sendEntity(reply, req, 'groups', GROUP_TYPE, await groups.create(actorOf(req), req.body as CreateGroupInput), 201),
    );
    app.patch('/groups/:id', { schema: { tags, params: IdParam, body: PatchBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { id: _id, createdDateTime: _created, ...patch } = req.body as GroupInput & { id?: string; createdDateTime?: string };
      return sendEntity(reply, req, 'groups', GROUP_TYPE, await groups.update(actorOf(req), id, patch));
    });
    app.delete('/groups/:id', { schema: { tags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await groups.delete(actorOf(req), id);
      return reply.code(204).send();
    });

    app.get('/groups/:id/members', { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const actor = actorOf(req);
      return listCollection(req, {
        model: memberModel,
        base: await groups.membersBase(actor, id),
        toEntity: async (rows) =>
          (await groups.hydrateMembers(actor.tenantId, rows)).map((m) =>
            m.type === 'user' ? { '@odata.type': `#${USER_TYPE}`, ...toUser(m.row, version) } : { '@odata.type': `#${DEVICE_TYPE}`, ...toDeviceMember(m.row) },
          ),
        contextFragment: 'directoryObjects',
      });
    });
    app.get('/groups/:id/members/$count', { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return reply.type('text/plain').send(await countResponse(req, memberModel, await groups.membersBase(actorOf(req), id)));
    });
    app.post('/groups/:id/members/$ref', { schema: { tags, params: IdParam, body: ODataRefBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await groups.addMember(actorOf(req), id, (req.body as { '@odata.id': string })['@odata.id']);
      return reply.code(204).send();
    });
    app.delete('/groups/:id/members/:memberId/$ref', { schema: { tags, params: MemberParams }, config: write }, async (req, reply) => {
      const { id, memberId } = req.params as { id: string; memberId: string };
      await groups.removeMember(actorOf(req), id, memberId);
      return reply.code(204).send();
    });
  };
}
