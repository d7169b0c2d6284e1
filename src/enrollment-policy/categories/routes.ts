import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { countResponse, listCollection } from '../../graph/collection.js';
import { notFound } from '../../graph/errors.js';
import { actorOf, contextUrl, resourceUrl, sendEntity } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { GraphBody, IdParam, Nullable, ODataQueryString, ODataRefBody, RoleScopeTagIds } from '../../graph/schemas.js';
import { DEVICE_CATEGORY_LIMITS, DEVICE_CATEGORY_TYPE } from './rules.js';
import type { CategoryInput, DeviceCategoryService } from './service.js';

export const deviceCategoryModel: EntityModel = {
  typeName: DEVICE_CATEGORY_TYPE,
  keyColumn: 'device_categories.id',
  properties: {
    id: { type: 'string', column: 'device_categories.id', filterOps: ['eq', 'ne'] },
    displayName: { type: 'string', column: 'device_categories.display_name', caseInsensitive: true },
    description: { type: 'string', column: 'device_categories.description' },
    roleScopeTagIds: { type: 'collection' },
  },
};

// Lengths beyond the limits get the rules' messages; the schema only stops absurd bodies.
const properties = {
  displayName: Type.String({ minLength: 1, maxLength: 4 * DEVICE_CATEGORY_LIMITS.displayName }),
  description: Type.Optional(Nullable(Type.String({ maxLength: 4 * DEVICE_CATEGORY_LIMITS.description }))),
  roleScopeTagIds: Type.Optional(RoleScopeTagIds),
  // Clients send back what they read.
  id: Type.Optional(Type.String()),
};
const CreateBody = GraphBody(properties);
const PatchBody = GraphBody({ ...properties, displayName: Type.Optional(properties.displayName) });

const BASE = 'deviceManagement/deviceCategories';
const DEVICES = 'deviceManagement/managedDevices';
const tags = ['deviceCategories'];
const read = { permission: 'enrollment.read' as const };
const write = { permission: 'enrollment.write' as const };
const deviceRead = { permission: 'devices.read' as const };
const deviceWrite = { permission: 'devices.write' as const };

export function deviceCategoryRoutes(service: DeviceCategoryService): FastifyPluginAsync {
  return async (app) => {
    app.get(`/${BASE}`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      return listCollection(req, {
        model: deviceCategoryModel,
        base: service.base(actor),
        toEntity: async (rows) => (await service.toEntities(actor.tenantId, rows)).map((c) => ({ '@odata.type': `#${DEVICE_CATEGORY_TYPE}`, ...c })),
        contextFragment: BASE,
      });
    });
    app.get(`/${BASE}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, deviceCategoryModel, service.base(actorOf(req)))),
    );
    app.get(`/${BASE}/:id`, { schema: { tags, params: IdParam }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, BASE, DEVICE_CATEGORY_TYPE, { ...(await service.get(actorOf(req), id)) });
    });
    app.post(
      `/${BASE}`,
      { schema: { tags, body: CreateBody, description: "Names are unique without regard to case; 'Unassigned' is reserved for devices without a category." }, config: write },
      async (req, reply) => {
        const body = req.body as CategoryInput & { displayName: string };
        return sendEntity(reply, req, BASE, DEVICE_CATEGORY_TYPE, { ...(await service.create(actorOf(req), body)) }, 201);
      },
    );
    app.patch(
      `/${BASE}/:id`,
      { schema: { tags, params: IdParam, body: PatchBody, description: "A new name reaches every device in the category (deviceCategoryDisplayName) and their dynamic groups." }, config: write },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        const { id: _id, ...patch } = req.body as CategoryInput & { id?: string };
        return sendEntity(reply, req, BASE, DEVICE_CATEGORY_TYPE, { ...(await service.update(actorOf(req), id, patch)) });
      },
    );
    app.delete(
      `/${BASE}/:id`,
      { schema: { tags, params: IdParam, description: "The category's devices become Unassigned (no category id, deviceCategoryDisplayName 'Unassigned')." }, config: write },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        await service.delete(actorOf(req), id);
        return reply.code(204).send();
      },
    );

    // The managedDevice navigation: its category as an entity and as a reference.
    const navTags = ['managedDevices'];
    app.get(
      `/${DEVICES}/:id/deviceCategory`,
      { schema: { tags: navTags, params: IdParam, description: "A device without a category answers the pseudo-category 'Unassigned' (all-zero id)." }, config: deviceRead },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        return sendEntity(reply, req, `${DEVICES}('${id}')/deviceCategory`, DEVICE_CATEGORY_TYPE, { ...(await service.categoryOfDevice(actorOf(req), id)) });
      },
    );
    app.get(`/${DEVICES}/:id/deviceCategory/$ref`, { schema: { tags: navTags, params: IdParam }, config: deviceRead }, async (req) => {
      const { id } = req.params as { id: string };
      const categoryId = await service.categoryIdOfDevice(actorOf(req), id);
      if (!categoryId) throw notFound(`Managed device '${id}' has no device category.`);
      return { '@odata.context': contextUrl(req, '$ref'), '@odata.id': resourceUrl(req, `${BASE}/${categoryId}`) };
    });
    app.put(
      `/${DEVICES}/:id/deviceCategory/$ref`,
      { schema: { tags: navTags, params: IdParam, body: ODataRefBody, description: 'Body: {"@odata.id": "…/deviceManagement/deviceCategories/{id}"}.' }, config: deviceWrite },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        await service.assignByRef(actorOf(req), id, (req.body as { '@odata.id': string })['@odata.id']);
        return reply.code(204).send();
      },
    );
    app.delete(`/${DEVICES}/:id/deviceCategory/$ref`, { schema: { tags: navTags, params: IdParam, description: 'The device shows Unassigned.' }, config: deviceWrite }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await service.unassign(actorOf(req), id);
      return reply.code(204).send();
    });
  };
}
