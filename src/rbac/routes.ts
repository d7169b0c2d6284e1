import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { actorOf, sendEntity } from '../graph/http.js';
import { countResponse, listCollection } from '../graph/collection.js';
import type { EntityModel } from '../graph/odata/model.js';
import { GraphBody, IdParam, Nullable, ODataQueryString } from '../graph/schemas.js';
import { ROLE_SCOPE_TAG_TYPE, toRoleScopeTag, type RoleScopeTagService } from './service.js';

export const roleScopeTagModel: EntityModel = {
  typeName: ROLE_SCOPE_TAG_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id' },
    displayName: { type: 'string', column: 'display_name', caseInsensitive: true },
    description: { type: 'string', column: 'description' },
    isBuiltIn: { type: 'boolean', column: 'is_built_in' },
  },
};

const CreateBody = GraphBody({
  displayName: Type.String({ minLength: 1, maxLength: 128 }),
  description: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
});
const PatchBody = GraphBody({
  displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  description: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
  id: Type.Optional(Type.String()),
  isBuiltIn: Type.Optional(Type.Boolean()),
});

const CONTEXT = 'deviceManagement/roleScopeTags';
const tags = ['roleScopeTags'];

export function roleScopeTagRoutes(service: RoleScopeTagService): FastifyPluginAsync {
  return async (app) => {
    app.get('/deviceManagement/roleScopeTags', { schema: { tags, querystring: ODataQueryString }, config: { permission: 'rbac.read' } }, async (req) =>
      listCollection(req, {
        model: roleScopeTagModel,
        base: service.base(actorOf(req)),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${ROLE_SCOPE_TAG_TYPE}`, ...toRoleScopeTag(r) })),
        contextFragment: CONTEXT,
      }),
    );
    app.get('/deviceManagement/roleScopeTags/$count', { schema: { tags, querystring: ODataQueryString }, config: { permission: 'rbac.read' } }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, roleScopeTagModel, service.base(actorOf(req)))),
    );
    app.get('/deviceManagement/roleScopeTags/:id', { schema: { tags, params: IdParam }, config: { permission: 'rbac.read' } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, CONTEXT, ROLE_SCOPE_TAG_TYPE, { ...(await service.get(actorOf(req), id)) });
    });
    app.post('/deviceManagement/roleScopeTags', { schema: { tags, body: CreateBody }, config: { permission: 'rbac.write' } }, async (req, reply) => {
      const body = req.body as { displayName: string; description?: string | null };
      return sendEntity(reply, req, CONTEXT, ROLE_SCOPE_TAG_TYPE, { ...(await service.create(actorOf(req), body)) }, 201);
    });
    app.patch('/deviceManagement/roleScopeTags/:id', { schema: { tags, params: IdParam, body: PatchBody }, config: { permission: 'rbac.write' } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const body = req.body as { displayName?: string; description?: string | null };
      return sendEntity(reply, req, CONTEXT, ROLE_SCOPE_TAG_TYPE, { ...(await service.update(actorOf(req), id, body)) });
    });
    app.delete('/deviceManagement/roleScopeTags/:id', { schema: { tags, params: IdParam }, config: { permission: 'rbac.write' } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await service.delete(actorOf(req), id);
      return reply.code(204).send();
    });
  };
}
