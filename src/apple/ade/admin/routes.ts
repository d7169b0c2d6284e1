import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { applySelect, countCollection, countResponse, listCollection } from '../../../graph/collection.js';
import { graphErrorHandler } from '../../../graph/error-handler.js';
import { badRequest, notFound } from '../../../graph/errors.js';
import { actorOf, contextUrl, entityBody, primitiveBody, sendEntity } from '../../../graph/http.js';
import { dateTimeFromString } from '../../../graph/odata/filter-parser.js';
import type { EntityModel, PropertyDef } from '../../../graph/odata/model.js';
import { parseQueryOptions } from '../../../graph/odata/query-options.js';
import { GraphBody, Nullable, ODataQueryString, ODataType, RoleScopeTagIds } from '../../../graph/schemas.js';
import { DEP_IOS_PROFILE_TYPE, DEP_MACOS_PROFILE_TYPE, type DepProfilePlatform } from '../profiles/index.js';
import { appleDeviceModel, type AdeDeviceService, type DeviceImportItem } from './device-service.js';
import { ADE_LIMITS, APPLE_DEVICE_RESULT_TYPE, APPLE_DEVICE_TYPE, DEP_TOKEN_TYPE, importResultItem, toDeviceEntity } from './model.js';
import { profileModel, type AdeProfileService } from './profile-service.js';
import type { AdeTokenService, TokenCreate } from './token-service.js';

const BASE = '/deviceManagement/depOnboardingSettings';
const CONTEXT = 'deviceManagement/depOnboardingSettings';
const tags = ['depOnboardingSettings'];
const read = { permission: 'enrollment.read' as const };
const write = { permission: 'enrollment.write' as const };
const IMPORT_BODY_LIMIT = 8 * 1024 * 1024;

const TokenParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const ProfileParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), profileId: Type.String({ minLength: 1, maxLength: 300 }) });
const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), deviceId: Type.String({ minLength: 1, maxLength: 200 }) });

const str = (column?: string, ci = false): PropertyDef => (column ? { type: 'string', column, ...(ci ? { caseInsensitive: true } : {}) } : { type: 'string', filterOps: [] });

/** depOnboardingSetting: $filter/$orderby on its columns ("search by token name or Apple ID"), $select on every property. */
export const tokenModel: EntityModel = {
  typeName: DEP_TOKEN_TYPE,
  keyColumn: 'dep_tokens.id',
  properties: {
    id: { type: 'string', column: 'dep_tokens.id', filterOps: ['eq', 'ne'] },
    appleIdentifier: str('apple_identifier', true),
    tokenExpirationDateTime: { type: 'datetime', column: 'token_expiration' },
    lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
    lastSuccessfulSyncDateTime: { type: 'datetime', column: 'last_successful_sync_at' },
    lastSyncTriggeredDateTime: { type: 'datetime', column: 'last_sync_triggered_at' },
    shareTokenWithSchoolDataSyncService: { type: 'boolean', column: 'share_sds' },
    lastSyncErrorCode: { type: 'int', column: 'last_sync_error_code' },
    tokenType: { type: 'enum', column: 'token_type', enumValues: ['none', 'dep', 'appleSchoolManager'] },
    tokenName: str('token_name', true),
    syncedDeviceCount: { type: 'int', column: 'synced_device_count' },
    dataSharingConsentGranted: { type: 'boolean', column: 'data_sharing_consent' },
    roleScopeTagIds: { type: 'collection' },
    status: str(),
    syncStatus: { type: 'enum', column: 'sync_status', enumValues: ['none', 'running', 'succeeded', 'failed'] },
    lastSyncErrorMessage: str(),
    daysUntilExpiration: { type: 'int' },
    mdmServerName: str('server_name', true),
    organizationName: str('org_name', true),
    deviceStatusCounts: { type: 'object' },
  },
};

const ReadOnly = Type.Optional(Type.Unknown());
const TOKEN_READ_ONLY = [
  'id',
  'appleIdentifier',
  'tokenExpirationDateTime',
  'lastModifiedDateTime',
  'lastSuccessfulSyncDateTime',
  'lastSyncTriggeredDateTime',
  'shareTokenWithSchoolDataSyncService',
  'lastSyncErrorCode',
  'tokenType',
  'syncedDeviceCount',
  'status',
  'syncStatus',
  'lastSyncErrorMessage',
  'daysUntilExpiration',
  'mdmServerName',
  'organizationName',
  'deviceStatusCounts',
] as const;
const tokenWritable = {
  tokenName: Type.Optional(Nullable(Type.String({ maxLength: ADE_LIMITS.tokenName }))),
  dataSharingConsentGranted: Type.Optional(Type.Boolean()),
  roleScopeTagIds: Type.Optional(RoleScopeTagIds),
};
const TokenCreateBody = GraphBody(tokenWritable);
/** PATCH also takes back what a GET returned: read-only properties are ignored. */
const TokenPatchBody = GraphBody({ ...tokenWritable, ...Object.fromEntries(TOKEN_READ_ONLY.map((k) => [k, ReadOnly])) });
const UploadBody = GraphBody({
  appleId: Type.String({ maxLength: 256, description: 'The (Managed) Apple ID that downloaded the server token' }),
  depToken: Type.String({ minLength: 1, maxLength: 65_536, description: 'The .p7m server token downloaded from Apple Business Manager or Apple School Manager, as text' }),
});
const AnyBody = Type.Object({}, { additionalProperties: true, description: 'A #microsoft.graph.depIOSEnrollmentProfile or #microsoft.graph.depMacOSEnrollmentProfile (checked by the service)' });
const AssignBody = GraphBody({
  deviceIds: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: ADE_LIMITS.devicesPerRequest, description: 'Serial numbers' }),
});

const deviceItemProps = {
  serialNumber: Type.String({ maxLength: 200 }),
  requestedEnrollmentProfileId: Type.Optional(Nullable(Type.String({ maxLength: 300 }))),
  description: Type.Optional(Nullable(Type.String({ maxLength: ADE_LIMITS.description }))),
  platform: Type.Optional(Type.String({ maxLength: 32 })),
  // Sent by clients (the docs' example), ignored: Apple decides supervision and the source is adminImport.
  isSupervised: ReadOnly,
  discoverySource: ReadOnly,
  id: ReadOnly,
  requestedEnrollmentProfileAssignmentDateTime: ReadOnly,
  createdDateTime: ReadOnly,
  lastContactedDateTime: ReadOnly,
  enrollmentState: ReadOnly,
  isDeleted: ReadOnly,
  '@odata.type': ODataType,
};
const DeviceItem = Type.Object(deviceItemProps, { additionalProperties: false });
const ImportBody = GraphBody({
  importedAppleDeviceIdentities: Type.Array(DeviceItem, { maxItems: ADE_LIMITS.devicesPerRequest }),
  overwriteImportedDeviceIdentities: Type.Optional(Type.Boolean()),
});
const DEVICE_READ_ONLY = ['id', 'serialNumber', 'requestedEnrollmentProfileAssignmentDateTime', 'isSupervised', 'platform', 'discoverySource', 'createdDateTime', 'lastContactedDateTime', 'enrollmentState', 'isDeleted', 'deviceStatus', 'appleAssignmentResult', 'appleAssignmentDateTime', 'removedFromAppleDateTime', 'effectiveEnrollmentProfileId'] as const;
const DevicePatchBody = GraphBody({
  description: Type.Optional(Nullable(Type.String({ maxLength: ADE_LIMITS.description }))),
  requestedEnrollmentProfileId: Type.Optional(Nullable(Type.String({ maxLength: 300 }))),
  ...Object.fromEntries(DEVICE_READ_ONLY.map((k) => [k, ReadOnly])),
});
const VppQuery = Type.Object({ expiringBeforeDateTime: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: true });

/** Single-valued navigations to default profiles; tvOS and visionOS ADE profiles don't exist here, so theirs are always unset. */
const DEFAULT_NAVS: Record<string, DepProfilePlatform | null> = {
  defaultIosEnrollmentProfile: 'iOS',
  defaultMacOsEnrollmentProfile: 'macOS',
  defaultTvOSEnrollmentProfile: null,
  defaultVisionOSEnrollmentProfile: null,
};

/** $expand of the default profile navigations (names matched regardless of case, as Intune does); taken out of the query. */
function takeExpand(req: FastifyRequest): { query: Record<string, unknown>; expand: string[] } {
  const query = { ...(req.query as Record<string, unknown>) };
  const raw = query.$expand;
  delete query.$expand;
  if (raw === undefined) return { query, expand: [] };
  if (typeof raw !== 'string') throw badRequest("Query option '$expand' was specified more than once.", '$expand');
  const expand: string[] = [];
  for (const part of raw.split(',').map((s) => s.trim())) {
    const name = Object.keys(DEFAULT_NAVS).find((n) => n.toLowerCase() === part.toLowerCase());
    if (!name) throw badRequest(`Query option '$expand' can expand ${Object.keys(DEFAULT_NAVS).join(', ')}; '${part}' isn't one of them.`, '$expand');
    if (!expand.includes(name)) expand.push(name);
  }
  return { query, expand };
}

function contextWith(fragment: string, select: string[] | undefined, expand: string[]): string {
  const parts = [...(select ?? []), ...expand.map((e) => `${e}()`)];
  return parts.length ? `${fragment}(${parts.join(',')})` : fragment;
}

const tokenContext = (id: string) => `${CONTEXT}('${id}')`;
const profileType = (entity: Record<string, unknown>) => String(entity['@odata.type'] ?? `#${DEP_IOS_PROFILE_TYPE}`).replace(/^#/, '');

/**
 * Graph keeps Apple Configurator's profiles and serials under a pseudo depOnboardingSetting whose id
 * is the tenant's id. Requests for `{tenantId}/enrollmentProfiles…` and
 * `{tenantId}/importedAppleDeviceIdentities…` go to this handler instead, after the route's own
 * permission and schema checks; `path` is the route's pattern below depOnboardingSettings
 * (e.g. `/:id/enrollmentProfiles/:profileId`). It answers like a route handler.
 */
export type PseudoSettingHandler = (req: FastifyRequest, reply: FastifyReply, route: { method: string; path: string }) => Promise<unknown>;

export interface AdeAdminServices {
  tokens: AdeTokenService;
  profiles: AdeProfileService;
  devices: AdeDeviceService;
  pseudoSetting?: PseudoSettingHandler;
}

const PSEUDO_SETTING_ROUTE = /\/depOnboardingSettings(\/:id\/(?:enrollmentProfiles|importedAppleDeviceIdentities)(?:\/.*)?)$/;

/** /beta/deviceManagement/depOnboardingSettings with enrollmentProfiles and importedAppleDeviceIdentities (graph-enrollment-api §3). */
export function adeAdminRoutes({ tokens, profiles, devices, pseudoSetting }: AdeAdminServices): FastifyPluginAsync {
  return async (app) => {
    if (pseudoSetting) {
      app.addHook('preHandler', async (req, reply) => {
        const path = PSEUDO_SETTING_ROUTE.exec(req.routeOptions.url ?? '')?.[1];
        if (path === undefined || (req.params as { id?: string }).id !== actorOf(req).tenantId) return;
        const body = await pseudoSetting(req, reply, { method: req.method, path });
        if (!reply.sent) void reply.send(body);
        return reply;
      });
    }

    const expansions = async (req: FastifyRequest, id: string, expand: string[]): Promise<Record<string, unknown>> => {
      const out: Record<string, unknown> = {};
      for (const nav of expand) {
        const platform = DEFAULT_NAVS[nav];
        out[nav] = platform ? await profiles.defaultProfile(actorOf(req), id, platform) : null;
      }
      return out;
    };

    // ---- tokens ----

    app.get(BASE, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      const { query: raw, expand } = takeExpand(req);
      const query = parseQueryOptions(tokenModel, raw);
      let ids: string[] = [];
      const body = await listCollection(req, {
        model: tokenModel,
        base: tokens.base(actor),
        toEntity: (rows) => {
          ids = rows.map((r) => r.id);
          return tokens.toEntities(actor.tenantId, rows);
        },
        contextFragment: CONTEXT,
        query,
      });
      if (expand.length > 0) {
        body['@odata.context'] = contextUrl(req, contextWith(CONTEXT, query.select, expand));
        for (let i = 0; i < body.value.length; i++) body.value[i] = { ...body.value[i], ...(await expansions(req, ids[i]!, expand)) };
      }
      body.value = body.value.map((e) => ({ '@odata.type': `#${DEP_TOKEN_TYPE}`, ...e }));
      return body;
    });

    app.get(`${BASE}/$count`, { schema: { tags, querystring: ODataQueryString }, config: read }, async (req, reply) =>
      reply.type('text/plain').send(await countResponse(req, tokenModel, tokens.base(actorOf(req)))),
    );

    app.post(BASE, { schema: { tags, body: TokenCreateBody }, config: write }, async (req, reply) =>
      sendEntity(reply, req, CONTEXT, DEP_TOKEN_TYPE, await tokens.create(actorOf(req), req.body as TokenCreate), 201),
    );

    app.get(
      `${BASE}/getExpiringVppTokenCount`,
      { schema: { tags, querystring: VppQuery, description: 'VPP tokens expiring before the time: always 0, as OpenEnroll holds no VPP tokens yet.' }, config: read },
      async (req) => {
        const at = (req.query as { expiringBeforeDateTime?: string }).expiringBeforeDateTime;
        if (at !== undefined && dateTimeFromString(at.trim()) === undefined) {
          throw badRequest(`Invalid value for parameter 'expiringBeforeDateTime': '${at}' is not a date and time with a time zone.`, 'expiringBeforeDateTime');
        }
        return primitiveBody(req, 'Edm.Int32', 0);
      },
    );

    app.get(`${BASE}/:id`, { schema: { tags, params: TokenParams, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const { query: raw, expand } = takeExpand(req);
      const { select } = parseQueryOptions(tokenModel, raw);
      const entity = { ...applySelect(await tokens.get(actorOf(req), id), select), ...(await expansions(req, id, expand)) };
      return entityBody(req, contextWith(CONTEXT, select, expand), DEP_TOKEN_TYPE, entity);
    });

    app.patch(`${BASE}/:id`, { schema: { tags, params: TokenParams, body: TokenPatchBody }, config: write }, async (req) => {
      const { id } = req.params as { id: string };
      const body = req.body as TokenCreate;
      const patch: TokenCreate = {};
      if (body.tokenName !== undefined) patch.tokenName = body.tokenName;
      if (body.roleScopeTagIds !== undefined) patch.roleScopeTagIds = body.roleScopeTagIds;
      if (body.dataSharingConsentGranted !== undefined) patch.dataSharingConsentGranted = body.dataSharingConsentGranted;
      return entityBody(req, CONTEXT, DEP_TOKEN_TYPE, await tokens.update(actorOf(req), id, patch));
    });

    app.delete(`${BASE}/:id`, { schema: { tags, params: TokenParams }, config: write }, async (req, reply) => {
      await tokens.delete(actorOf(req), (req.params as { id: string }).id);
      return reply.code(204).send();
    });

    for (const [nav, platform] of Object.entries(DEFAULT_NAVS)) {
      app.get(`${BASE}/:id/${nav}`, { schema: { tags, params: TokenParams, querystring: ODataQueryString }, config: read }, async (req) => {
        const { id } = req.params as { id: string };
        const { select } = parseQueryOptions(profileModel, req.query as Record<string, unknown>);
        let entity: Record<string, unknown> | null = null;
        if (platform) entity = await profiles.defaultProfile(actorOf(req), id, platform);
        else await tokens.get(actorOf(req), id); // 404 for a token the caller can't see
        // Like Graph's unset single-valued navigations (a user's manager): 404; $expand shows null.
        if (!entity) throw notFound(`The enrollment program token has no ${nav}.`);
        return entityBody(req, `${tokenContext(id)}/${nav}`, platform === 'macOS' ? DEP_MACOS_PROFILE_TYPE : DEP_IOS_PROFILE_TYPE, applySelect(entity, select));
      });
    }

    app.post(`${BASE}/:id/generateEncryptionPublicKey`, { schema: { tags, params: TokenParams }, config: write }, async (req) =>
      primitiveBody(req, 'Edm.String', await tokens.generateEncryptionPublicKey(actorOf(req), (req.params as { id: string }).id)),
    );

    app.get(`${BASE}/:id/getEncryptionPublicKey`, { schema: { tags, params: TokenParams }, config: read }, async (req) =>
      primitiveBody(req, 'Edm.String', await tokens.getEncryptionPublicKey(actorOf(req), (req.params as { id: string }).id)),
    );

    app.post(`${BASE}/:id/uploadDepToken`, { schema: { tags, params: TokenParams, body: UploadBody }, config: write }, async (req, reply) => {
      await tokens.upload(actorOf(req), (req.params as { id: string }).id, req.body as { appleId: string; depToken: string });
      return reply.code(204).send();
    });

    for (const [action, share] of [
      ['shareForSchoolDataSyncService', true],
      ['unshareForSchoolDataSyncService', false],
    ] as const) {
      app.post(`${BASE}/:id/${action}`, { schema: { tags, params: TokenParams }, config: write }, async (req, reply) => {
        await tokens.setSchoolDataSync(actorOf(req), (req.params as { id: string }).id, share);
        return reply.code(204).send();
      });
    }

    app.post(`${BASE}/:id/syncWithAppleDeviceEnrollmentProgram`, { schema: { tags, params: TokenParams }, config: write }, async (req, reply) => {
      await tokens.requestSync(actorOf(req), (req.params as { id: string }).id);
      return reply.code(204).send();
    });

    // ---- enrollment profiles ----

    const PROFILES = `${BASE}/:id/enrollmentProfiles`;

    app.get(PROFILES, { schema: { tags, params: TokenParams, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const { token, query } = await profiles.base(actorOf(req), id);
      return listCollection(req, { model: profileModel, base: query, toEntity: (rows) => profiles.toEntities(token, rows), contextFragment: `${tokenContext(id)}/enrollmentProfiles` });
    });

    app.get(`${PROFILES}/$count`, { schema: { tags, params: TokenParams, querystring: ODataQueryString }, config: read }, async (req, reply) => {
      const { query } = await profiles.base(actorOf(req), (req.params as { id: string }).id);
      return reply.type('text/plain').send(await countResponse(req, profileModel, query));
    });

    app.post(PROFILES, { schema: { tags, params: TokenParams, body: AnyBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const entity = await profiles.create(actorOf(req), id, req.body);
      return sendEntity(reply, req, `${tokenContext(id)}/enrollmentProfiles`, profileType(entity), entity, 201);
    });

    app.get(`${PROFILES}/:profileId`, { schema: { tags, params: ProfileParams, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id, profileId } = req.params as { id: string; profileId: string };
      const { select } = parseQueryOptions(profileModel, req.query as Record<string, unknown>);
      const entity = await profiles.get(actorOf(req), id, profileId);
      return entityBody(req, contextWith(`${tokenContext(id)}/enrollmentProfiles`, select, []), profileType(entity), applySelect(entity, select));
    });

    app.patch(`${PROFILES}/:profileId`, { schema: { tags, params: ProfileParams, body: AnyBody }, config: write }, async (req) => {
      const { id, profileId } = req.params as { id: string; profileId: string };
      const entity = await profiles.update(actorOf(req), id, profileId, req.body);
      return entityBody(req, `${tokenContext(id)}/enrollmentProfiles`, profileType(entity), entity);
    });

    app.delete(`${PROFILES}/:profileId`, { schema: { tags, params: ProfileParams }, config: write }, async (req, reply) => {
      const { id, profileId } = req.params as { id: string; profileId: string };
      await profiles.delete(actorOf(req), id, profileId);
      return reply.code(204).send();
    });

    app.post(`${PROFILES}/:profileId/setDefaultProfile`, { schema: { tags, params: ProfileParams }, config: write }, async (req, reply) => {
      const { id, profileId } = req.params as { id: string; profileId: string };
      await profiles.setDefault(actorOf(req), id, profileId);
      return reply.code(204).send();
    });

    app.post(`${PROFILES}/:profileId/updateDeviceProfileAssignment`, { schema: { tags, params: ProfileParams, body: AssignBody }, config: write }, async (req, reply) => {
      const { id, profileId } = req.params as { id: string; profileId: string };
      await devices.updateProfileAssignment(actorOf(req), id, profileId, (req.body as { deviceIds: string[] }).deviceIds);
      return reply.code(204).send();
    });

    app.get(`${PROFILES}/:profileId/exportMobileConfig`, { schema: { tags, params: ProfileParams }, config: read }, async (req) => {
      const { id, profileId } = req.params as { id: string; profileId: string };
      return profiles.exportMobileConfig(actorOf(req), id, profileId);
    });

    // ---- imported Apple device identities ----

    const DEVICES = `${BASE}/:id/importedAppleDeviceIdentities`;
    const deviceContext = (id: string) => `${tokenContext(id)}/importedAppleDeviceIdentities`;

    app.get(DEVICES, { schema: { tags, params: TokenParams, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      const { base, query } = await devices.list(actorOf(req), id, parseQueryOptions(appleDeviceModel, req.query as Record<string, unknown>));
      const body = await listCollection(req, { model: appleDeviceModel, base, query, toEntity: (rows) => rows.map((r) => toDeviceEntity(r)), contextFragment: deviceContext(id) });
      body.value = body.value.map((e) => ({ '@odata.type': `#${APPLE_DEVICE_TYPE}`, ...e }));
      return body;
    });

    app.get(`${DEVICES}/$count`, { schema: { tags, params: TokenParams, querystring: ODataQueryString }, config: read }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { base, query } = await devices.list(actorOf(req), id, parseQueryOptions(appleDeviceModel, req.query as Record<string, unknown>));
      return reply.type('text/plain').send(String(await countCollection(base, appleDeviceModel, query)));
    });

    app.get(`${DEVICES}/:deviceId`, { schema: { tags, params: DeviceParams, querystring: ODataQueryString }, config: read }, async (req) => {
      const { id, deviceId } = req.params as { id: string; deviceId: string };
      const { select } = parseQueryOptions(appleDeviceModel, req.query as Record<string, unknown>);
      return entityBody(req, contextWith(deviceContext(id), select, []), APPLE_DEVICE_TYPE, applySelect(await devices.get(actorOf(req), id, deviceId), select));
    });

    app.patch(`${DEVICES}/:deviceId`, { schema: { tags, params: DeviceParams, body: DevicePatchBody }, config: write }, async (req) => {
      const { id, deviceId } = req.params as { id: string; deviceId: string };
      const body = req.body as { description?: string | null; requestedEnrollmentProfileId?: string | null };
      const patch: { description?: string | null; requestedEnrollmentProfileId?: string | null } = {};
      if (body.description !== undefined) patch.description = body.description;
      if (body.requestedEnrollmentProfileId !== undefined) patch.requestedEnrollmentProfileId = body.requestedEnrollmentProfileId;
      return entityBody(req, deviceContext(id), APPLE_DEVICE_TYPE, await devices.patch(actorOf(req), id, deviceId, patch));
    });

    app.delete(`${DEVICES}/:deviceId`, { schema: { tags, params: DeviceParams }, config: write }, async (req, reply) => {
      const { id, deviceId } = req.params as { id: string; deviceId: string };
      await devices.delete(actorOf(req), id, deviceId);
      return reply.code(204).send();
    });

    app.post(DEVICES, { schema: { tags, params: TokenParams, body: DeviceItem }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      return sendEntity(reply, req, deviceContext(id), APPLE_DEVICE_TYPE, await devices.create(actorOf(req), id, req.body as DeviceImportItem), 201);
    });

    // Up to 5,000 items: a larger body limit than other routes.
    await app.register(async (bulk) => {
      bulk.setErrorHandler(graphErrorHandler(IMPORT_BODY_LIMIT));
      bulk.post(
        `${DEVICES}/importAppleDeviceIdentityList`,
        {
          bodyLimit: IMPORT_BODY_LIMIT,
          schema: {
            tags,
            params: TokenParams,
            body: ImportBody,
            description:
              `Imports up to ${ADE_LIMITS.devicesPerRequest} serial numbers; one importedAppleDeviceIdentityResult per item, in order (status false: not imported, see the status@openEnroll.message annotation). ` +
              'A serial already imported keeps its details unless overwriteImportedDeviceIdentities is true.',
          },
          config: write,
        },
        async (req) => {
          const { id } = req.params as { id: string };
          const body = req.body as { importedAppleDeviceIdentities: DeviceImportItem[]; overwriteImportedDeviceIdentities?: boolean };
          const outcomes = await devices.importList(actorOf(req), id, body.importedAppleDeviceIdentities, body.overwriteImportedDeviceIdentities ?? false);
          return {
            '@odata.context': contextUrl(req, `Collection(${APPLE_DEVICE_RESULT_TYPE})`),
            value: outcomes.map((o, i) =>
              importResultItem(body.importedAppleDeviceIdentities[i]!, o.entity, o.ok, o.error ? { 'status@openEnroll.message': o.error } : {}),
            ),
          };
        },
      );
    });
  };
}
