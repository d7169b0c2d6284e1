import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { applySelect, countCollection, listCollection } from '../../graph/collection.js';
import { graphErrorHandler } from '../../graph/error-handler.js';
import { hasPermission } from '../../auth/principal.js';
import { badRequest, forbidden, notFound } from '../../graph/errors.js';
import { actorOf, contextUrl, entityBody, primitiveBody, requireCsvBody, sendEntity } from '../../graph/http.js';
import { parseQueryOptions } from '../../graph/odata/query-options.js';
import type { PseudoSettingHandler } from '../ade/admin/routes.js';
import { APPLE_DEVICE_TYPE, CONFIGURATOR_LIMITS, CONFIGURATOR_PROFILE_TYPE, toDeviceEntity } from './configurator-rules.js';
import { APPLE_DEVICE_RESULT_TYPE, importResultItem } from '../ade/admin/model.js';
import { configuratorDeviceModel, configuratorProfileModel, type ConfiguratorService } from './configurator-service.js';

/**
 * Apple Configurator's admin API, Graph's shape: profiles and serials under the pseudo
 * depOnboardingSetting `{tenantId}` (graph §3.2–3.3). The ADE routes own those URL patterns and
 * hand requests for the tenant's id to `configuratorPseudoSetting`; the CSV upload, which Graph
 * doesn't have, is a route of its own.
 */

const BASE = '/deviceManagement/depOnboardingSettings';
const tags = ['depOnboardingSettings'];

const setting = (tenantId: string) => `deviceManagement/depOnboardingSettings('${tenantId}')`;
const profilesContext = (tenantId: string) => `${setting(tenantId)}/enrollmentProfiles`;
const devicesContext = (tenantId: string) => `${setting(tenantId)}/importedAppleDeviceIdentities`;
const withSelect = (fragment: string, select: string[] | undefined) => (select ? `${fragment}(${select.join(',')})` : fragment);

type Params = { id: string; profileId?: string; deviceId?: string };
interface DeviceItemBody {
  serialNumber: string;
  description?: string | null;
  requestedEnrollmentProfileId?: string | null;
  platform?: string;
}

/** What the ADE routes call for `depOnboardingSettings/{tenantId}/…`. */
export function configuratorPseudoSetting(service: ConfiguratorService): PseudoSettingHandler {
  type Handler = (req: FastifyRequest, reply: FastifyReply, p: Params) => Promise<unknown>;
  const routes: Record<string, Handler> = {
    'GET /:id/enrollmentProfiles': async (req) => {
      const actor = actorOf(req);
      return listCollection(req, {
        model: configuratorProfileModel,
        base: service.profiles(actor),
        toEntity: async (rows) => (await service.profileEntities(actor.tenantId, rows)).map((e) => ({ '@odata.type': `#${CONFIGURATOR_PROFILE_TYPE}`, ...e })),
        contextFragment: profilesContext(actor.tenantId),
      });
    },
    'GET /:id/enrollmentProfiles/$count': async (req, reply) => {
      const query = parseQueryOptions(configuratorProfileModel, req.query as Record<string, unknown>);
      return reply.type('text/plain').send(String(await countCollection(service.profiles(actorOf(req)), configuratorProfileModel, query)));
    },
    'POST /:id/enrollmentProfiles': async (req, reply, p) =>
      sendEntity(reply, req, profilesContext(p.id), CONFIGURATOR_PROFILE_TYPE, await service.createProfile(actorOf(req), req.body), 201),
    'GET /:id/enrollmentProfiles/:profileId': async (req, _reply, p) => {
      const { select } = parseQueryOptions(configuratorProfileModel, req.query as Record<string, unknown>);
      return entityBody(req, withSelect(profilesContext(p.id), select), CONFIGURATOR_PROFILE_TYPE, applySelect(await service.getProfile(actorOf(req), p.profileId!), select));
    },
    'PATCH /:id/enrollmentProfiles/:profileId': async (req, _reply, p) =>
      entityBody(req, profilesContext(p.id), CONFIGURATOR_PROFILE_TYPE, await service.updateProfile(actorOf(req), p.profileId!, req.body)),
    'DELETE /:id/enrollmentProfiles/:profileId': async (req, reply, p) => {
      await service.deleteProfile(actorOf(req), p.profileId!);
      return reply.code(204).send();
    },
    'POST /:id/enrollmentProfiles/:profileId/setDefaultProfile': async (req, _reply, p) => {
      await service.profileRow(actorOf(req), p.profileId!);
      throw badRequest('Apple Configurator profiles have no default: a device gets the profile assigned to its serial, else the one whose profile URL prepared it.');
    },
    'POST /:id/enrollmentProfiles/:profileId/updateDeviceProfileAssignment': async (req, reply, p) => {
      await service.assignProfile(actorOf(req), p.profileId!, (req.body as { deviceIds: string[] }).deviceIds);
      return reply.code(204).send();
    },
    'GET /:id/enrollmentProfiles/:profileId/exportMobileConfig': async (req, _reply, p) => {
      // A GET in Graph, but each call mints an enrollment credential valid 14 days: it takes write rights.
      if (!hasPermission(actorOf(req).principal, 'enrollment.write')) throw forbidden("Downloading a direct-enrollment profile needs the 'enrollment.write' permission.");
      const platform = (req.query as { platform?: unknown }).platform;
      if (platform !== undefined && platform !== 'iOS' && platform !== 'macOS') {
        throw badRequest(`Invalid value for parameter 'platform': must be 'iOS' or 'macOS'.`, 'platform');
      }
      const exported = await service.exportMobileConfig(actorOf(req), p.profileId!, platform);
      return { ...primitiveBody(req, 'Edm.String', exported.value), 'value@openEnroll.expirationDateTime': exported.expiresAt };
    },
    'GET /:id/importedAppleDeviceIdentities': async (req) => {
      const actor = actorOf(req);
      return listCollection(req, {
        model: configuratorDeviceModel,
        base: service.devices(actor),
        toEntity: (rows) => rows.map((r) => ({ '@odata.type': `#${APPLE_DEVICE_TYPE}`, ...toDeviceEntity(r) })),
        contextFragment: devicesContext(actor.tenantId),
      });
    },
    'GET /:id/importedAppleDeviceIdentities/$count': async (req, reply) => {
      const query = parseQueryOptions(configuratorDeviceModel, req.query as Record<string, unknown>);
      return reply.type('text/plain').send(String(await countCollection(service.devices(actorOf(req)), configuratorDeviceModel, query)));
    },
    'POST /:id/importedAppleDeviceIdentities': async (req, reply, p) =>
      sendEntity(reply, req, devicesContext(p.id), APPLE_DEVICE_TYPE, await service.createDevice(actorOf(req), req.body as DeviceItemBody), 201),
    'GET /:id/importedAppleDeviceIdentities/:deviceId': async (req, _reply, p) => {
      const { select } = parseQueryOptions(configuratorDeviceModel, req.query as Record<string, unknown>);
      return entityBody(req, withSelect(devicesContext(p.id), select), APPLE_DEVICE_TYPE, applySelect(await service.getDevice(actorOf(req), p.deviceId!), select));
    },
    'PATCH /:id/importedAppleDeviceIdentities/:deviceId': async (req, _reply, p) => {
      const body = req.body as { description?: string | null; requestedEnrollmentProfileId?: string | null };
      const patch: { description?: string | null; requestedEnrollmentProfileId?: string | null } = {};
      if (body.description !== undefined) patch.description = body.description;
      if (body.requestedEnrollmentProfileId !== undefined) patch.requestedEnrollmentProfileId = body.requestedEnrollmentProfileId;
      return entityBody(req, devicesContext(p.id), APPLE_DEVICE_TYPE, await service.patchDevice(actorOf(req), p.deviceId!, patch));
    },
    'DELETE /:id/importedAppleDeviceIdentities/:deviceId': async (req, reply, p) => {
      await service.deleteDevice(actorOf(req), p.deviceId!);
      return reply.code(204).send();
    },
    'POST /:id/importedAppleDeviceIdentities/importAppleDeviceIdentityList': async (req) => {
      const body = req.body as { importedAppleDeviceIdentities: DeviceItemBody[]; overwriteImportedDeviceIdentities?: boolean };
      const outcomes = await service.importList(actorOf(req), body.importedAppleDeviceIdentities, body.overwriteImportedDeviceIdentities ?? false);
      return {
        '@odata.context': contextUrl(req, `Collection(${APPLE_DEVICE_RESULT_TYPE})`),
        value: outcomes.map((o, i) =>
          importResultItem(body.importedAppleDeviceIdentities[i]!, o.entity, o.status !== 'failed', {
            ...(o.error ? { 'status@openEnroll.message': o.error } : {}),
            ...(o.keptDetails !== undefined ? { 'description@openEnroll.kept': 'The stored details were kept (overwriteImportedDeviceIdentities is false).' } : {}),
          }),
        ),
      };
    },
  };
  return async (req, reply, route) => {
    const handler = routes[`${route.method} ${route.path}`];
    if (!handler) throw notFound(`Resource not found for the segment '${route.path.split('/').pop()}' of the Apple Configurator setting.`);
    return handler(req, reply, req.params as Params);
  };
}

const CsvQuery = Type.Object(
  {
    profileId: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'The Apple Configurator profile every row gets (required for scoped administrators)' })),
    overwrite: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description: '"Overwrite details for existing identifiers"' })),
  },
  { additionalProperties: true },
);
const CsvParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

/** `POST …/depOnboardingSettings/{tenantId}/importedAppleDeviceIdentities/importCsv` (OpenEnroll extension, beta). */
export function configuratorAdminRoutes(service: ConfiguratorService): FastifyPluginAsync {
  return async (app) => {
    // Its own scope: a 5 MiB body limit, and only here is text/csv parsed.
    app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: CONFIGURATOR_LIMITS.csvBytes }, (_req, body, done) => done(null, body));
    app.setErrorHandler(graphErrorHandler(CONFIGURATOR_LIMITS.csvBytes));
    app.post(
      `${BASE}/:id/importedAppleDeviceIdentities/importCsv`,
      {
        bodyLimit: CONFIGURATOR_LIMITS.csvBytes,
        preValidation: requireCsvBody,
        schema: {
          tags,
          consumes: ['text/csv'],
          params: CsvParams,
          querystring: CsvQuery,
          body: Type.String({ description: 'The CSV file: no header; serial,details per row.' }),
          description:
            "OpenEnroll extension: Apple Configurator's device CSV upload, under the tenant's pseudo depOnboardingSetting (id = tenant id). " +
            'No header row; two columns, serial number then details (details may be empty). At most 5,000 rows (more: 400, nothing imported) and 5 MiB (more: 413). ' +
            'Every row gets ?profileId=; a serial already imported keeps its details unless ?overwrite=true. ' +
            'Answers one result per row: created, overwritten, updated (profile changed, details kept), unchanged, or failed with the reason.',
        },
        config: { permission: 'enrollment.write' },
      },
      async (req) => {
        const { id } = req.params as { id: string };
        const actor = actorOf(req);
        if (id !== actor.tenantId) throw notFound(`importCsv is available on the Apple Configurator setting of your tenant (depOnboardingSettings('${actor.tenantId}')).`);
        const q = req.query as { profileId?: string; overwrite?: 'true' | 'false' };
        const value = await service.importCsv(actor, req.body as string, q.profileId, q.overwrite === 'true');
        return { '@odata.context': contextUrl(req, 'Collection(microsoft.graph.openEnrollConfiguratorCsvResult)'), value };
      },
    );
  };
}
