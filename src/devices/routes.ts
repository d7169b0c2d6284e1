import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { applySelect, countResponse, listCollection, listInMemory } from '../graph/collection.js';
import { actorOf, contextUrl, entityBody } from '../graph/http.js';
import type { EntityModel } from '../graph/odata/model.js';
import { parseQueryOptions } from '../graph/odata/query-options.js';
import { IdParam, ODataQueryString } from '../graph/schemas.js';
import type { UsersTable } from '../store/schema.js';
import { MANAGED_DEVICE_TYPE, managedDeviceModel } from './model.js';
import type { DeviceRecords } from './service.js';

const CONTEXT = 'deviceManagement/managedDevices';
const USER_TYPE = 'microsoft.graph.user';
const tags = ['managedDevices'];
const read = { permission: 'devices.read' as const };
const write = { permission: 'devices.write' as const };

/** The user properties a device's primary-user navigation returns (the directory owns the full shape). */
export const primaryUserModel: EntityModel = {
  typeName: USER_TYPE,
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id' },
    displayName: { type: 'string', column: 'displayName', caseInsensitive: true },
    userPrincipalName: { type: 'string', column: 'userPrincipalName', caseInsensitive: true },
    givenName: { type: 'string', column: 'givenName' },
    surname: { type: 'string', column: 'surname' },
    mail: { type: 'string', column: 'mail', caseInsensitive: true },
    mailNickname: { type: 'string', column: 'mailNickname' },
    accountEnabled: { type: 'boolean', column: 'accountEnabled' },
    jobTitle: { type: 'string', column: 'jobTitle' },
    department: { type: 'string', column: 'department' },
    officeLocation: { type: 'string', column: 'officeLocation' },
    mobilePhone: { type: 'string', column: 'mobilePhone' },
    usageLocation: { type: 'string', column: 'usageLocation' },
    userType: { type: 'string', column: 'userType' },
    employeeId: { type: 'string', column: 'employeeId' },
  },
};

export function primaryUserEntity(u: UsersTable): Record<string, unknown> {
  return {
    '@odata.type': `#${USER_TYPE}`,
    id: u.id,
    displayName: u.display_name,
    userPrincipalName: u.user_principal_name,
    givenName: u.given_name,
    surname: u.surname,
    mail: u.mail,
    mailNickname: u.mail_nickname,
    accountEnabled: u.account_enabled === 1,
    jobTitle: u.job_title,
    department: u.department,
    officeLocation: u.office_location,
    mobilePhone: u.mobile_phone,
    usageLocation: u.usage_location,
    userType: u.user_type,
    employeeId: u.employee_id,
  };
}

/** PATCH bodies are checked by the service, which names read-only properties rather than calling them unknown. */
const PatchBody = Type.Object({}, { additionalProperties: true });

export function deviceRoutes(devices: DeviceRecords): FastifyPluginAsync {
  return async (app) => {
    // The Graph deviceManagement singleton: the tenant's Intune account.
    app.get('/deviceManagement', { schema: { tags: ['deviceManagement'] }, config: read }, async (req) => {
      const { tenantId } = actorOf(req);
      return {
        '@odata.context': contextUrl(req, 'deviceManagement'),
        '@odata.type': '#microsoft.graph.deviceManagement',
        id: 'deviceManagement',
        intuneAccountId: tenantId,
        // Apple's per-account cap on ADE tokens (requirements-004-D: 2,000).
        maximumDepTokens: 2000,
        legacyPcManangementEnabled: false,
        subscriptionState: 'active',
      };
    });

    app.get(`/${CONTEXT}`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      return listCollection(req, {
        model: managedDeviceModel,
        base: devices.base(actor),
        toEntity: async (rows) => (await devices.toEntities(actor.tenantId, rows)).map((d) => ({ '@odata.type': `#${MANAGED_DEVICE_TYPE}`, ...d })),
        contextFragment: CONTEXT,
      });
    });

    app.get(`/${CONTEXT}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, managedDeviceModel, devices.base(actorOf(req)))),
    );

    app.get(`/${CONTEXT}/:id`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const { select } = parseQueryOptions(managedDeviceModel, req.query as Record<string, unknown>);
      const device = await devices.get(actorOf(req), id);
      const fragment = select ? `${CONTEXT}(${select.join(',')})` : CONTEXT;
      return entityBody(req, fragment, MANAGED_DEVICE_TYPE, applySelect({ ...device }, select));
    });

    app.patch(`/${CONTEXT}/:id`, { schema: { tags, params: IdParam, body: PatchBody }, config: write }, async (req) => {
      const { id } = req.params as { id: string };
      return entityBody(req, CONTEXT, MANAGED_DEVICE_TYPE, { ...(await devices.patch(actorOf(req), id, req.body)) });
    });

    app.delete(`/${CONTEXT}/:id`, { schema: { tags, params: IdParam }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await devices.delete(actorOf(req), id);
      return reply.code(204).send();
    });

    app.get(`/${CONTEXT}/:id/users`, { schema: { tags, params: IdParam, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const users = await devices.primaryUsers(actorOf(req), id);
      return listInMemory(req, { model: primaryUserModel, items: users.map(primaryUserEntity), contextFragment: 'users' });
    });
  };
}
