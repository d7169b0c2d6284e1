import crypto from 'node:crypto';
import type { Actor } from '../auth/principal.js';
import type { Executor } from '../store/db.js';
import type { AuditEventsTable } from '../store/schema.js';
import type { Clock } from '../shared/time.js';
import { redact } from './redact.js';

/**
 * Every admin change writes one audit event, inside the change's own transaction, in Graph's
 * `auditEvent` shape: who, when, which object, what changed (old and new values, secrets
 * redacted) and the request id as correlationId.
 */

export type OperationType = 'Create' | 'Patch' | 'Delete' | 'Action';

export interface AuditChange {
  /** e.g. "Create user", "Assign devices to profile". */
  activity: string;
  operation: OperationType;
  /** Graph type of the changed object, e.g. microsoft.graph.user. */
  resourceType: string;
  resourceId: string;
  resourceDisplayName?: string | null;
  /** Feature area as Intune names it (Enrollment, Device, Directory, Role). */
  category: string;
  componentName: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  /** Extra property names to redact for this resource. */
  secretProperties?: readonly string[];
  result?: 'Success' | 'Failure';
}

export interface ModifiedProperty {
  displayName: string;
  oldValue: string | null;
  newValue: string | null;
}

const show = (v: unknown): string | null => (v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v));

/** Pure: the properties that differ between two snapshots, already redacted. */
export function diffProperties(
  before: Record<string, unknown> | null | undefined,
  after: Record<string, unknown> | null | undefined,
  secretProperties: readonly string[] = [],
): ModifiedProperty[] {
  const b = redact(before ?? {}, secretProperties) as Record<string, unknown>;
  const a = redact(after ?? {}, secretProperties) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((k) => !k.startsWith('@odata.')).sort();
  const out: ModifiedProperty[] = [];
  for (const k of keys) {
    const ov = show(b[k]);
    const nv = show(a[k]);
    if (ov !== nv) out.push({ displayName: k, oldValue: ov, newValue: nv });
  }
  return out;
}

export class AuditLog {
  constructor(private readonly clock: Clock) {}

  async record(db: Executor, actor: Actor, change: AuditChange): Promise<string> {
    const id = crypto.randomUUID();
    const p = actor.principal;
    const actorJson = {
      type: p.kind === 'apiKey' ? 'ItPro' : p.kind === 'system' ? 'Service' : 'ItPro',
      auditActorType: p.kind === 'oidc' ? 'itPro' : p.kind === 'apiKey' ? 'application' : 'partner',
      userPermissions: [p.role],
      applicationId: p.kind === 'apiKey' ? p.id : null,
      applicationDisplayName: p.kind === 'apiKey' ? p.displayName : p.kind === 'system' ? p.displayName : null,
      userPrincipalName: p.userPrincipalName ?? null,
      servicePrincipalName: p.kind === 'apiKey' ? p.displayName : null,
      ipAddress: p.ipAddress ?? null,
      userId: p.kind === 'oidc' ? p.id : null,
      remoteTenantId: null,
      remoteUserId: null,
      userRoleScopeTags: (p.scopeTagIds ?? []).map((id) => ({ roleScopeTagId: id, displayName: null })),
    };
    const resources = [
      {
        displayName: change.resourceDisplayName ?? null,
        modifiedProperties: diffProperties(change.before, change.after, change.secretProperties),
        type: change.resourceType,
        auditResourceType: change.resourceType,
        resourceId: change.resourceId,
      },
    ];
    const row: AuditEventsTable = {
      id,
      tenant_id: actor.tenantId,
      activity_date_time: this.clock.now().toISOString(),
      display_name: change.activity,
      component_name: change.componentName,
      category: change.category,
      activity: change.activity,
      activity_type: change.activity,
      activity_operation_type: change.operation,
      activity_result: change.result ?? 'Success',
      actor: JSON.stringify(actorJson),
      actor_id: p.id,
      resources: JSON.stringify(resources),
      resource_type: change.resourceType,
      resource_id: change.resourceId,
      correlation_id: actor.requestId,
      client_request_id: actor.clientRequestId ?? null,
    };
    await db.insertInto('audit_events').values(row).execute();
    return id;
  }
}

export function auditEventEntity(row: AuditEventsTable): Record<string, unknown> {
  return {
    id: row.id,
    displayName: row.display_name,
    componentName: row.component_name,
    actor: JSON.parse(row.actor) as unknown,
    activity: row.activity,
    activityDateTime: row.activity_date_time,
    activityType: row.activity_type,
    activityOperationType: row.activity_operation_type,
    activityResult: row.activity_result,
    correlationId: row.correlation_id,
    resources: JSON.parse(row.resources) as unknown,
    category: row.category,
  };
}
