/** Who is calling, what they may do, and which scope tags bound what they see. */

export const ROLES = ['administrator', 'readOnlyOperator', 'scopedAdministrator'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  'directory.read',
  'directory.write',
  'devices.read',
  'devices.write',
  'enrollment.read',
  'enrollment.write',
  'audit.read',
  'rbac.read',
  'rbac.write',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const READ: Permission[] = ['directory.read', 'devices.read', 'enrollment.read', 'audit.read', 'rbac.read'];

/**
 * - administrator: everything in its tenant (scope tags still bound which Intune objects it sees);
 * - readOnlyOperator: reads only;
 * - scopedAdministrator: manages devices and enrollment objects within its scope tags, reads the
 *   directory, and can't change role scope tags or the directory.
 */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  administrator: new Set(PERMISSIONS),
  readOnlyOperator: new Set(READ),
  scopedAdministrator: new Set<Permission>(['directory.read', 'devices.read', 'devices.write', 'enrollment.read', 'enrollment.write', 'rbac.read']),
};

export interface Principal {
  kind: 'apiKey' | 'oidc' | 'system';
  /** API key id, token subject, or 'system'. */
  id: string;
  displayName: string;
  tenantId: string;
  role: Role;
  /** Scope tag ids the principal is limited to; null means every scope. */
  scopeTagIds: readonly string[] | null;
  userPrincipalName?: string;
  ipAddress?: string;
}

/** Everything a service needs to act on behalf of a caller and record it. */
export interface Actor {
  tenantId: string;
  principal: Principal;
  requestId: string;
  clientRequestId?: string | undefined;
}

export function isRole(v: string): v is Role {
  return (ROLES as readonly string[]).includes(v);
}

export function hasPermission(p: Principal, perm: Permission): boolean {
  return ROLE_PERMISSIONS[p.role].has(perm);
}

/** An actor for work the server does on its own (jobs, enrollment), with every scope. */
export function systemActor(tenantId: string, requestId: string, displayName = 'OpenEnroll'): Actor {
  return {
    tenantId,
    requestId,
    principal: { kind: 'system', id: 'system', displayName, tenantId, role: 'administrator', scopeTagIds: null },
  };
}
