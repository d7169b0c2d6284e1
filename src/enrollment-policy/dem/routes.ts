import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { countResponse, listCollection } from '../../graph/collection.js';
import { actorOf, sendEntity } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { GraphBody, IdParam, ODataQueryString } from '../../graph/schemas.js';
import { DEM_TYPE, type DeviceEnrollmentManagerService } from './service.js';

export const demModel: EntityModel = {
  typeName: DEM_TYPE,
  keyColumn: 'dem.user_id',
  properties: {
    id: { type: 'string', column: 'dem.user_id', filterOps: ['eq', 'ne'] },
    userId: { type: 'string', column: 'dem.user_id', filterOps: ['eq', 'ne'] },
    userPrincipalName: { type: 'string', column: 'users.user_principal_name', caseInsensitive: true },
    displayName: { type: 'string', column: 'users.display_name', caseInsensitive: true },
    createdDateTime: { type: 'datetime', column: 'dem.created_at' },
    // Counted per page, not a column: not filterable or sortable.
    enrolledDeviceCount: { type: 'int' },
  },
};

const AddBody = GraphBody(
  {
    userPrincipalName: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    userId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { description: 'Exactly one of userPrincipalName and userId; the user must exist in the directory.' },
);

const BASE = 'deviceManagement/deviceEnrollmentManagers';
const tags = ['deviceEnrollmentManagers'];
const read = { permission: 'enrollment.read' as const };
// Only tenant-wide admins manage DEM accounts (Global/Intune Service Administrator, L1461–1468).
const write = { permission: 'enrollment.write' as const, requireUnscoped: true };
const DESCRIPTION =
  'OpenEnroll extension (Graph has no DEM resource): device enrollment managers, directory users who may enroll up to 1,000 devices each ' +
  '(at most 10 Android personally-owned work-profile devices), at most 150 per tenant. DEM devices are userless and shared: no primary user, ' +
  'enrolledByUserPrincipalName is the DEM, deviceEnrollmentType deviceEnrollmentManager, corporate-owned. Not usable with Apple ADE, Apple School Manager, ' +
  'Apple Configurator, or Android corporate-owned work profile and fully managed enrollment.';

export function demRoutes(service: DeviceEnrollmentManagerService): FastifyPluginAsync {
  return async (app) => {
    app.get(`/${BASE}`, { schema: { tags, querystring: ODataQueryString, description: DESCRIPTION }, config: read }, async (req) => {
      const actor = actorOf(req);
      return listCollection(req, {
        model: demModel,
        base: service.base(actor),
        toEntity: async (rows) => (await service.toEntities(actor.tenantId, rows)).map((d) => ({ '@odata.type': `#${DEM_TYPE}`, ...d })),
        contextFragment: BASE,
      });
    });
    app.get(`/${BASE}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, demModel, service.base(actorOf(req)))),
    );
    app.get(`/${BASE}/:id`, { schema: { tags, params: IdParam, description: 'By user id or userPrincipalName.' }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, BASE, DEM_TYPE, { ...(await service.get(actorOf(req), id)) });
    });
    app.post(`/${BASE}`, { schema: { tags, body: AddBody, description: DESCRIPTION }, config: write }, async (req, reply) => {
      const body = req.body as { userPrincipalName?: string; userId?: string };
      return sendEntity(reply, req, BASE, DEM_TYPE, { ...(await service.add(actorOf(req), body)) }, 201);
    });
    app.delete(`/${BASE}/:id`, { schema: { tags, params: IdParam, description: 'By user id or userPrincipalName. Devices it enrolled stay managed.' }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await service.remove(actorOf(req), id);
      return reply.code(204).send();
    });
  };
}
