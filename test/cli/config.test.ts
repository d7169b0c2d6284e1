import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('server configuration from the environment', () => {
  it('listens on 8080 and keeps data in ./data by default', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.dataDir).toBe(path.resolve('./data'));
    expect(c.databaseUrl).toBeUndefined();
    expect(c.oidc).toBeUndefined();
    expect(c.trustProxy).toBe(false);
    expect(c.logLevel).toBe('info');
  });

  it('takes PORT and OPENENROLL_DATA_DIR', () => {
    const c = loadConfig({ PORT: '9443', OPENENROLL_DATA_DIR: '/srv/openenroll' });
    expect(c.port).toBe(9443);
    expect(c.dataDir).toBe('/srv/openenroll');
  });

  it.each([['0'], ['65535']])('accepts PORT=%s', (port) => {
    expect(loadConfig({ PORT: port }).port).toBe(Number(port));
  });

  it.each([['65536'], ['-1'], ['80.5'], ['http'], ['1e3'], ['0x50']])('refuses PORT=%s', (port) => {
    expect(() => loadConfig({ PORT: port })).toThrow(new ConfigError(`PORT must be an integer from 0 to 65535, got "${port}"`));
  });

  it.each([
    ['false', false],
    ['0', false],
    ['off', false],
    ['true', true],
    ['1', true],
    ['10.0.0.0/8,127.0.0.1', '10.0.0.0/8,127.0.0.1'],
  ])('reads OPENENROLL_TRUST_PROXY=%s as %s', (raw, expected) => {
    expect(loadConfig({ OPENENROLL_TRUST_PROXY: raw }).trustProxy).toBe(expected);
  });

  it('refuses an unknown LOG_LEVEL instead of failing later inside the logger', () => {
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/);
    expect(loadConfig({ LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug');
  });

  it('reads the OIDC settings, with the claim names defaulting to tid, roles and scope_tags', () => {
    const c = loadConfig({ OPENENROLL_OIDC_ISSUER: 'https://login.example/tenant/v2.0', OPENENROLL_OIDC_AUDIENCE: 'api://openenroll' });
    expect(c.oidc).toEqual({
      issuer: 'https://login.example/tenant/v2.0',
      audience: 'api://openenroll',
      jwksUri: undefined,
      tenantClaim: 'tid',
      rolesClaim: 'roles',
      scopeTagsClaim: 'scope_tags',
    });
  });

  it('refuses an OIDC issuer that is not an http(s) URL, or one without an audience', () => {
    expect(() => loadConfig({ OPENENROLL_OIDC_ISSUER: 'login.example', OPENENROLL_OIDC_AUDIENCE: 'a' })).toThrow(/OPENENROLL_OIDC_ISSUER must be an http\(s\) URL/);
    expect(() => loadConfig({ OPENENROLL_OIDC_ISSUER: 'https://login.example' })).toThrow(/OPENENROLL_OIDC_AUDIENCE is required/);
    expect(() => loadConfig({ OPENENROLL_OIDC_ISSUER: 'https://login.example', OPENENROLL_OIDC_AUDIENCE: 'a', OPENENROLL_OIDC_JWKS_URI: 'file:///keys' })).toThrow(/OPENENROLL_OIDC_JWKS_URI/);
  });

  it('runs one server process unless OPENENROLL_WORKERS says more', () => {
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig({ OPENENROLL_WORKERS: '' }).workers).toBe(1);
    expect(loadConfig({ OPENENROLL_WORKERS: '1' }).workers).toBe(1);
    expect(loadConfig({ OPENENROLL_WORKERS: ' 4 ' }).workers).toBe(4);
    expect(loadConfig({ OPENENROLL_WORKERS: '256' }).workers).toBe(256);
  });

  it.each([['auto'], ['AUTO']])('reads OPENENROLL_WORKERS=%s as one worker per core', (raw) => {
    expect(loadConfig({ OPENENROLL_WORKERS: raw }).workers).toBe(Math.min(256, os.availableParallelism()));
  });

  it.each([['0'], ['-1'], ['1.5'], ['2x'], ['two'], ['1e1'], ['257'], ['0x2']])('refuses OPENENROLL_WORKERS=%s', (raw) => {
    expect(() => loadConfig({ OPENENROLL_WORKERS: raw })).toThrow(
      new ConfigError(`OPENENROLL_WORKERS must be a whole number from 1 to 256, or auto (one per core), got "${raw}"`),
    );
  });
  it('sizes the PostgreSQL pool from OPENENROLL_PG_POOL_SIZE (1 to 1000, default 10)', () => {
    expect(loadConfig({}).pgPoolSize).toBe(10);
    expect(loadConfig({ OPENENROLL_PG_POOL_SIZE: '1' }).pgPoolSize).toBe(1);
    expect(loadConfig({ OPENENROLL_PG_POOL_SIZE: '1000' }).pgPoolSize).toBe(1000);
    for (const raw of ['0', '1001', 'ten', '2.5']) {
      expect(() => loadConfig({ OPENENROLL_PG_POOL_SIZE: raw })).toThrow(new ConfigError(`OPENENROLL_PG_POOL_SIZE must be an integer from 1 to 1000, got "${raw}"`));
    }
  });

  it('paces APNs pushes at OPENENROLL_APNS_PUSH_BACKLOG device requests in progress (default 128, 0 turns it off)', () => {
    expect(loadConfig({}).apns.pushBacklog).toBe(128);
    expect(loadConfig({ OPENENROLL_APNS_PUSH_BACKLOG: '0' }).apns.pushBacklog).toBe(0);
    expect(loadConfig({ OPENENROLL_APNS_PUSH_BACKLOG: '1000000' }).apns.pushBacklog).toBe(1_000_000);
    for (const raw of ['-1', '1000001', 'many']) {
      expect(() => loadConfig({ OPENENROLL_APNS_PUSH_BACKLOG: raw })).toThrow(new ConfigError(`OPENENROLL_APNS_PUSH_BACKLOG must be an integer from 0 to 1000000, got "${raw}"`));
    }
  });
});
