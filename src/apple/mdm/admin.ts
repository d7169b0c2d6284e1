import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import { listCollection } from '../../graph/collection.js';
import { conflict, notFound } from '../../graph/errors.js';
import { actorOf, contextUrl, entityBody, sendEntity } from '../../graph/http.js';
import type { EntityModel } from '../../graph/odata/model.js';
import { parseQueryOptions } from '../../graph/odata/query-options.js';
import { GraphBody, ODataQueryString } from '../../graph/schemas.js';
import { MANAGED_DEVICE_TYPE } from '../../devices/model.js';
import type { DeviceRecords } from '../../devices/service.js';
import { parsePlistDict, type PlistValue } from '../../shared/plist.js';
import type { Clock } from '../../shared/time.js';
import type { Store } from '../../store/db.js';
import type { MdmEnrollmentsTable } from '../../store/schema.js';
import { adminCommand, checkDeviceName, settingsDeviceName, type CommandSpec } from './commands.js';
import type { PushNotifier } from './contracts.js';
import { plistToJson } from './messages.js';
import { commandOf, type MdmCommandQueue } from './queue.js';

/**
 * The admin side of the MDM core (an OpenEnroll extension: Graph has no generic MDM command
 * resource): a managed device's Apple MDM commands and enrollment, and the Graph actions that
 * become commands (setDeviceName) or a push (syncDevice). The device's visibility (tenant and
 * scope tags, out of scope = 404) is the devices module's; every change is audited.
 */

export const APPLE_MDM_COMMAND_TYPE = 'openEnroll.appleMdmCommand';
export const APPLE_MDM_ENROLLMENT_TYPE = 'openEnroll.appleMdmEnrollment';
const DEVICE_CHANNELS = ['Device', 'UserEnrollmentDevice'] as const;
const BULK_CHUNK = 500;
/** Devices one bulk command may name (a fleet-wide command is this many per call). */
export const BULK_COMMAND_MAX_DEVICES = 10_000;
const AUDIT = { resourceType: MANAGED_DEVICE_TYPE, category: 'Device', componentName: 'DeviceManagement' } as const;

export const commandModel: EntityModel = {
  typeName: APPLE_MDM_COMMAND_TYPE,
  keyColumn: 'q.command_uuid',
  properties: {
    id: { type: 'string', column: 'q.command_uuid', filterOps: ['eq', 'ne'] },
    commandUuid: { type: 'string', column: 'q.command_uuid', filterOps: ['eq', 'ne'] },
    requestType: { type: 'string', column: 'c.request_type', filterOps: ['eq', 'ne', 'startswith'] },
    status: { type: 'enum', column: 'q.status', enumValues: ['queued', 'sent', 'Acknowledged', 'Error', 'CommandFormatError', 'NotNow', 'Cancelled'] },
    source: { type: 'enum', column: 'c.source', enumValues: ['admin', 'system'] },
    createdBy: { type: 'string', column: 'c.created_by', filterOps: ['eq', 'ne'] },
    channel: { type: 'string', filterOps: [] },
    enrollmentId: { type: 'string', column: 'q.enrollment_id', filterOps: ['eq', 'ne'] },
    userShortName: { type: 'string', column: 'e.user_short_name', filterOps: ['eq', 'ne'] },
    queuedDateTime: { type: 'datetime', column: 'q.queued_at' },
    sentDateTime: { type: 'datetime', column: 'q.sent_at' },
    completedDateTime: { type: 'datetime', column: 'q.completed_at' },
    notNowCount: { type: 'int', column: 'q.not_now_count' },
    /** Position in the enrollment's queue (commands queued in one millisecond keep their order). */
    sequence: { type: 'int', column: 'q.seq' },
    errorChain: { type: 'collection' },
  },
};

interface CommandRow {
  command_uuid: string;
  enrollment_id: string;
  status: string;
  queued_at: string;
  sent_at: string | null;
  completed_at: string | null;
  not_now_count: number;
  seq: number;
  error_chain: string | null;
  request_type: string;
  source: string;
  created_by: string | null;
  type: string;
  user_short_name: string | null;
}

function commandEntity(r: CommandRow): Record<string, unknown> {
  return {
    id: r.command_uuid,
    commandUuid: r.command_uuid,
    requestType: r.request_type,
    status: r.status,
    source: r.source,
    createdBy: r.created_by,
    channel: r.type === 'User' || r.type === 'UserEnrollmentUser' ? 'user' : 'device',
    enrollmentId: r.enrollment_id,
    userShortName: r.user_short_name,
    queuedDateTime: r.queued_at,
    sentDateTime: r.sent_at,
    completedDateTime: r.completed_at,
    notNowCount: r.not_now_count,
    sequence: r.seq,
    errorChain: r.error_chain ? (JSON.parse(r.error_chain) as unknown) : [],
  };
}

/** A result plist as JSON, without the envelope keys the entity already shows. */
function resultJson(plist: string | null): unknown {
  if (!plist) return null;
  try {
    const { UDID: _u, EnrollmentID: _e, Status: _s, CommandUUID: _c, ErrorChain: _ec, ...rest } = parsePlistDict(plist, { maxBytes: 64 * 1024 * 1024 });
    return plistToJson(rest);
  } catch {
    return null;
  }
}

function payloadJson(plist: string): unknown {
  const { RequestType: _r, ...rest } = commandOf(plist);
  return plistToJson(rest as Record<string, PlistValue>);
}

export interface MdmAdminDeps {
  store: Store;
  clock: Clock;
  audit: AuditLog;
  devices: DeviceRecords;
  queue: MdmCommandQueue;
  push: () => PushNotifier | undefined;
}

export class MdmAdminService {
  constructor(private readonly deps: MdmAdminDeps) {}

  /** The device (visible to the actor, else 404) and its latest device-channel enrollment, if any. */
  private async enrollmentOf(actor: Actor, deviceId: string): Promise<MdmEnrollmentsTable | undefined> {
    await this.deps.devices.get(actor, deviceId);
    return this.deps.store.db
      .selectFrom('mdm_enrollments')
      .selectAll()
      .where('tenant_id', '=', actor.tenantId)
      .where('managed_device_id', '=', deviceId)
      .where('type', 'in', [...DEVICE_CHANNELS])
      .orderBy('updated_at', 'desc')
      .executeTakeFirst();
  }

  private async activeEnrollment(actor: Actor, deviceId: string): Promise<MdmEnrollmentsTable> {
    const e = await this.enrollmentOf(actor, deviceId);
    if (!e || e.enabled !== 1 || e.checked_out_at !== null) throw conflict(`Managed device '${deviceId}' has no active Apple MDM enrollment.`);
    return e;
  }

  /** Commands of every channel of the device (device and user channels). */
  async commandsBase(actor: Actor, deviceId: string) {
    await this.deps.devices.get(actor, deviceId);
    return this.deps.store.db
      .selectFrom('mdm_command_queue as q')
      .innerJoin('mdm_commands as c', 'c.uuid', 'q.command_uuid')
      .innerJoin('mdm_enrollments as e', 'e.id', 'q.enrollment_id')
      .select(['q.command_uuid', 'q.enrollment_id', 'q.status', 'q.queued_at', 'q.sent_at', 'q.completed_at', 'q.not_now_count', 'q.seq', 'q.error_chain', 'c.request_type', 'c.source', 'c.created_by', 'e.type', 'e.user_short_name'])
      .where('q.tenant_id', '=', actor.tenantId)
      .where('e.tenant_id', '=', actor.tenantId)
      .where('e.managed_device_id', '=', deviceId);
  }

  toEntities(rows: CommandRow[]): Record<string, unknown>[] {
    return rows.map(commandEntity);
  }

  async getCommand(actor: Actor, deviceId: string, uuid: string): Promise<Record<string, unknown>> {
    const base = await this.commandsBase(actor, deviceId);
    const row = await base.select(['q.result_plist', 'c.command_plist']).where('q.command_uuid', '=', uuid).orderBy('q.queued_at', 'desc').executeTakeFirst();
    if (!row) throw notFound(`Apple MDM command '${uuid}' was not found for managed device '${deviceId}'.`);
    return { ...commandEntity(row), payload: payloadJson(row.command_plist), result: resultJson(row.result_plist) };
  }

  private async queueForDevice(actor: Actor, deviceId: string, spec: CommandSpec, activity: string): Promise<string> {
    const e = await this.activeEnrollment(actor, deviceId);
    return this.deps.store.transaction(async (trx) => {
      const uuid = await this.deps.queue.add(trx, actor.tenantId, [e.id], { requestType: spec.requestType, payload: spec.payload }, { source: 'admin', createdBy: actor.principal.id });
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        activity,
        operation: 'Action',
        resourceId: deviceId,
        after: { commandUuid: uuid, requestType: spec.requestType },
      });
      return uuid;
    });
  }

  async enqueue(actor: Actor, deviceId: string, body: { requestType?: unknown; payload?: unknown }): Promise<Record<string, unknown>> {
    const spec = adminCommand(body.requestType, body.payload);
    const uuid = await this.queueForDevice(actor, deviceId, spec, 'Queue Apple MDM command');
    return this.getCommand(actor, deviceId, uuid);
  }

  /**
   * One command to many devices (an OpenEnroll extension shaped like Graph's bulk executeAction
   * result): one command UUID queued, in one transaction, for every listed device the actor sees
   * that has an active Apple MDM enrollment; one audit record. Devices out of scope read as not
   * found, devices without an active enrollment as not supported.
   */
  async enqueueBulk(actor: Actor, body: { requestType?: unknown; payload?: unknown; managedDeviceIds: string[] }): Promise<Record<string, unknown>> {
    const spec = adminCommand(body.requestType, body.payload);
    const ids = [...new Set(body.managedDeviceIds)];
    // Visibility first, as for one device (queueForDevice); the enrollments are read in the transaction that queues.
    const visible = new Set<string>();
    for (let i = 0; i < ids.length; i += BULK_CHUNK) {
      const chunk = ids.slice(i, i + BULK_CHUNK);
      for (const r of await this.deps.devices.base(actor).clearSelect().select('managed_devices.id').where('managed_devices.id', 'in', chunk).execute()) visible.add(r.id);
    }
    return this.deps.store.transaction(async (trx) => {
      const enrollments = new Map<string, string>();
      for (let i = 0; i < ids.length; i += BULK_CHUNK) {
        const chunk = ids.slice(i, i + BULK_CHUNK).filter((id) => visible.has(id));
        if (chunk.length === 0) continue;
        const active = await trx
          .selectFrom('mdm_enrollments')
          .select(['id', 'managed_device_id'])
          .where('tenant_id', '=', actor.tenantId)
          .where('managed_device_id', 'in', chunk)
          .where('type', 'in', [...DEVICE_CHANNELS])
          .where('enabled', '=', 1)
          .where('checked_out_at', 'is', null)
          .orderBy('updated_at', 'asc')
          .execute();
        // The latest enrollment of a device wins, as for one device.
        for (const e of active) enrollments.set(e.managed_device_id!, e.id);
      }
      const notFoundDeviceIds = ids.filter((id) => !visible.has(id));
      const notSupportedDeviceIds = ids.filter((id) => visible.has(id) && !enrollments.has(id));
      const successfulDeviceIds = ids.filter((id) => visible.has(id) && enrollments.has(id));
      const commandUuid =
        successfulDeviceIds.length === 0
          ? null
          : await this.deps.queue.add(trx, actor.tenantId, successfulDeviceIds.map((id) => enrollments.get(id)!), { requestType: spec.requestType, payload: spec.payload }, { source: 'admin', createdBy: actor.principal.id });
      if (commandUuid) {
        await this.deps.audit.record(trx, actor, {
          ...AUDIT,
          activity: 'Queue Apple MDM command (bulk)',
          operation: 'Action',
          resourceId: commandUuid,
          after: { commandUuid, requestType: spec.requestType, devices: successfulDeviceIds.length },
        });
      }
      return { commandUuid, requestType: spec.requestType, successfulDeviceIds, failedDeviceIds: [], notFoundDeviceIds, notSupportedDeviceIds };
    });
  }

  /** Graph setDeviceName: the Settings command with DeviceName. */
  async setDeviceName(actor: Actor, deviceId: string, deviceName: unknown): Promise<void> {
    await this.queueForDevice(actor, deviceId, settingsDeviceName(checkDeviceName('deviceName', deviceName)), 'Set device name');
  }

  /** Graph syncDevice: wakes the device through APNs so it checks in. */
  async syncDevice(actor: Actor, deviceId: string): Promise<void> {
    const e = await this.activeEnrollment(actor, deviceId);
    await this.deps.store.transaction(async (trx) => {
      await this.deps.audit.record(trx, actor, { ...AUDIT, activity: 'Sync device', operation: 'Action', resourceId: deviceId, after: { enrollmentId: e.id } });
    });
    await this.deps.push()?.push(actor.tenantId, [e.id]);
  }

  /** The device's Apple MDM enrollment: channel state, bootstrap token escrow, installed profiles. */
  async enrollmentView(actor: Actor, deviceId: string): Promise<Record<string, unknown>> {
    const e = await this.enrollmentOf(actor, deviceId);
    if (!e) throw notFound(`Managed device '${deviceId}' has no Apple MDM enrollment.`);
    const users = await this.deps.store.db.selectFrom('mdm_enrollments').selectAll().where('tenant_id', '=', actor.tenantId).where('device_enrollment_id', '=', e.id).execute();
    const profiles = e.profile_list ? (JSON.parse(e.profile_list) as unknown) : null;
    return {
      id: e.id,
      managedDeviceId: deviceId,
      enrollmentType: e.type,
      udid: e.udid,
      appleEnrollmentId: e.apple_enrollment_id,
      serialNumber: e.serial_number,
      platform: e.platform,
      enabled: e.enabled === 1,
      pushable: e.enabled === 1 && e.push_token !== null && e.apns_status === null,
      apnsStatus: e.apns_status,
      topic: e.topic,
      tokenUpdateCount: e.token_update_tally,
      awaitingConfiguration: e.awaiting_configuration === 1,
      deviceConfiguredDateTime: e.device_configured_at,
      bootstrapTokenEscrowed: e.bootstrap_token_secret_id !== null,
      bootstrapTokenEscrowedDateTime: e.bootstrap_token_at,
      unlockTokenEscrowed: e.unlock_token_secret_id !== null,
      authenticatedDateTime: e.authenticated_at,
      enrolledDateTime: e.enrolled_at,
      checkedOutDateTime: e.checked_out_at,
      lastSeenDateTime: e.last_seen_at,
      lastInventoryDateTime: e.inventory_at,
      installedProfiles: profiles,
      installedProfilesDateTime: e.profile_list_at,
      userChannels: users.map((u) => ({
        id: u.id,
        enrollmentType: u.type,
        userId: u.apple_user_id,
        userShortName: u.user_short_name,
        userLongName: u.user_long_name,
        enabled: u.enabled === 1,
        lastSeenDateTime: u.last_seen_at,
      })),
    };
  }
}

const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const CommandParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), uuid: Type.String({ minLength: 1, maxLength: 128 }) });
const CommandBody = GraphBody({ requestType: Type.String({ minLength: 1, maxLength: 64 }), payload: Type.Optional(Type.Unknown()) });
const BulkCommandBody = GraphBody({
  requestType: Type.String({ minLength: 1, maxLength: 64 }),
  payload: Type.Optional(Type.Unknown()),
  managedDeviceIds: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: BULK_COMMAND_MAX_DEVICES }),
});
const BULK_RESULT_TYPE = 'openEnroll.bulkAppleMdmCommandResult';
const SetDeviceNameBody = GraphBody({ deviceName: Type.String({ maxLength: 1024 }) });
const BASE = '/deviceManagement/managedDevices/:id';
const CONTEXT = 'deviceManagement/managedDevices';
const tags = ['managedDevices'];
const read = { permission: 'devices.read' as const };
const write = { permission: 'devices.write' as const };
/** InstallProfile carries a profile of up to 1 MiB, in base64. */
const COMMAND_BODY_LIMIT = 2 * 1024 * 1024;

/** appleMdmCommands, appleMdmEnrollment and setDeviceName: beta (Graph's setDeviceName is beta only). */
export function mdmAdminRoutesBeta(admin: MdmAdminService): FastifyPluginAsync {
  return async (app) => {
    app.get(`${BASE}/appleMdmCommands`, { schema: { tags, params: DeviceParams, querystring: ODataQueryString }, config: read }, async (req) => {
      const actor = actorOf(req);
      const { id } = req.params as { id: string };
      const query = parseQueryOptions(commandModel, req.query as Record<string, unknown>);
      // Newest first unless the caller orders otherwise.
      if (query.orderBy.length === 0) {
        query.orderBy = [
          { property: 'queuedDateTime', direction: 'desc' },
          { property: 'sequence', direction: 'desc' },
        ];
      }
      return listCollection(req, {
        model: commandModel,
        base: await admin.commandsBase(actor, id),
        query,
        toEntity: (rows) => admin.toEntities(rows).map((e) => ({ '@odata.type': `#${APPLE_MDM_COMMAND_TYPE}`, ...e })),
        contextFragment: `${CONTEXT}('${id}')/appleMdmCommands`,
      });
    });

    app.post(`${BASE}/appleMdmCommands`, { schema: { tags, params: DeviceParams, body: CommandBody }, config: write, bodyLimit: COMMAND_BODY_LIMIT }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const entity = await admin.enqueue(actorOf(req), id, req.body as { requestType: string; payload?: unknown });
      return sendEntity(reply, req, `${CONTEXT}('${id}')/appleMdmCommands`, APPLE_MDM_COMMAND_TYPE, entity, 201);
    });

    app.post(
      '/deviceManagement/managedDevices/queueAppleMdmCommand',
      { schema: { tags, body: BulkCommandBody }, config: write, bodyLimit: COMMAND_BODY_LIMIT + BULK_COMMAND_MAX_DEVICES * 256 },
      async (req, reply) => {
        const result = await admin.enqueueBulk(actorOf(req), req.body as { requestType: string; payload?: unknown; managedDeviceIds: string[] });
        return reply.code(200).send({ '@odata.context': contextUrl(req, BULK_RESULT_TYPE), ...result });
      },
    );

    app.get(`${BASE}/appleMdmCommands/:uuid`, { schema: { tags, params: CommandParams }, config: read }, async (req) => {
      const { id, uuid } = req.params as { id: string; uuid: string };
      return entityBody(req, `${CONTEXT}('${id}')/appleMdmCommands`, APPLE_MDM_COMMAND_TYPE, await admin.getCommand(actorOf(req), id, uuid));
    });

    app.get(`${BASE}/appleMdmEnrollment`, { schema: { tags, params: DeviceParams }, config: read }, async (req) => {
      const { id } = req.params as { id: string };
      return entityBody(req, `${CONTEXT}('${id}')/appleMdmEnrollment`, APPLE_MDM_ENROLLMENT_TYPE, await admin.enrollmentView(actorOf(req), id));
    });

    app.post(`${BASE}/setDeviceName`, { schema: { tags, params: DeviceParams, body: SetDeviceNameBody }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await admin.setDeviceName(actorOf(req), id, (req.body as { deviceName: string }).deviceName);
      return reply.code(204).send();
    });
  };
}

/** syncDevice exists in v1.0 and beta. */
export function mdmAdminRoutesAll(admin: MdmAdminService): FastifyPluginAsync {
  return async (app) => {
    app.post(`${BASE}/syncDevice`, { schema: { tags, params: DeviceParams }, config: write }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await admin.syncDevice(actorOf(req), id);
      return reply.code(204).send();
    });
  };
}

