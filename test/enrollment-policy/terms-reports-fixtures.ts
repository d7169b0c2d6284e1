import type { AppleEnrollmentTypesModule } from '../../src/enrollment-policy/apple-enrollment-types/module.js';
import type { EnrollmentReportsModule } from '../../src/enrollment-policy/reports/module.js';
import type { TermsModule } from '../../src/enrollment-policy/terms/module.js';
import type { TestApp } from '../helpers/app.js';

/** Shared set-up for the terms, enrollment type and report tests. */

function moduleNamed<T>(t: TestApp, name: string): T {
  const m = t.app.modules.find((x) => x.name === name);
  if (!m) throw new Error(`module ${name} is not registered`);
  return m as unknown as T;
}

export const termsModule = (t: TestApp) => moduleNamed<TermsModule>(t, 'terms-and-conditions');
export const enrollmentTypesModule = (t: TestApp) => moduleNamed<AppleEnrollmentTypesModule>(t, 'apple-enrollment-types');
export const reportsModule = (t: TestApp) => moduleNamed<EnrollmentReportsModule>(t, 'enrollment-reports');

type Json = Record<string, unknown>;

export async function createUser(t: TestApp, upn: string, key?: string, displayName = upn.split('@')[0]!): Promise<string> {
  const res = await t.request({ method: 'POST', url: '/v1.0/users', payload: { displayName, userPrincipalName: upn }, ...(key ? { key } : {}) });
  if (res.statusCode !== 201) throw new Error(`creating user ${upn}: ${res.statusCode} ${res.body}`);
  return (res.json() as { id: string }).id;
}

export async function createGroup(t: TestApp, displayName: string, more: Json = {}, key?: string): Promise<string> {
  const res = await t.request({
    method: 'POST',
    url: '/v1.0/groups',
    payload: { displayName, mailEnabled: false, mailNickname: displayName.replace(/\W/g, '').slice(0, 20) || 'g', securityEnabled: true, ...more },
    ...(key ? { key } : {}),
  });
  if (res.statusCode !== 201) throw new Error(`creating group ${displayName}: ${res.statusCode} ${res.body}`);
  return (res.json() as { id: string }).id;
}

export async function addMember(t: TestApp, groupId: string, objectId: string, key?: string): Promise<void> {
  const res = await t.request({
    method: 'POST',
    url: `/v1.0/groups/${groupId}/members/$ref`,
    payload: { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${objectId}` },
    ...(key ? { key } : {}),
  });
  if (res.statusCode !== 204) throw new Error(`adding ${objectId} to ${groupId}: ${res.statusCode} ${res.body}`);
}

export const groupTarget = (groupId: string) => ({ '@odata.type': '#microsoft.graph.groupAssignmentTarget', groupId });
export const exclusionTarget = (groupId: string) => ({ '@odata.type': '#microsoft.graph.exclusionGroupAssignmentTarget', groupId });
export const allUsersTarget = { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget' };
export const allDevicesTarget = { '@odata.type': '#microsoft.graph.allDevicesAssignmentTarget' };
