import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';

describe('server basics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('serves health, readiness and metrics', async () => {
    expect((await t.request({ method: 'GET', url: '/healthz', key: null })).statusCode).toBe(200);
    expect((await t.request({ method: 'GET', url: '/readyz', key: null })).statusCode).toBe(200);
    const m = await t.request({ method: 'GET', url: '/metrics', key: null });
    expect(m.statusCode).toBe(200);
    expect(m.body).toContain('openenroll_http_requests_total');
  });

  it('tags responses with request-id and echoes client-request-id', async () => {
    const res = await t.request({ method: 'GET', url: '/beta/deviceManagement/roleScopeTags', headers: { 'client-request-id': 'abc-123' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['client-request-id']).toBe('abc-123');
    expect(res.json().value[0]).toMatchObject({ id: '0', displayName: 'Default', isBuiltIn: true });
  });

  it('refuses a missing bearer with a Graph 401', async () => {
    const res = await t.request({ method: 'GET', url: '/beta/deviceManagement/roleScopeTags', key: null });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('Unauthorized');
    expect(res.json().error.innerError['request-id']).toBe(res.headers['request-id']);
  });
});
