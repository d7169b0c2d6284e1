import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKIN_CONTENT_TYPE } from '../../src/apple/mdm/index.js';
import { mdmHarness, plistBody, sign, type MdmHarness } from './mdm-support.js';

/** What the APNs push job paces by: the MDM requests this node is serving, also on /metrics. */
describe('MDM requests in progress', () => {
  let h: MdmHarness;
  beforeAll(async () => {
    h = await mdmHarness();
  });
  afterAll(async () => h.close());

  const inProgress = async () => (await h.t.app.core.metrics.registry.getSingleMetric('openenroll_apple_mdm_requests_in_progress')?.get())?.values[0]?.value;

  it('counts a message from its headers until its answer, refused or not', async () => {
    const id = await h.identity(await h.intent({ platform: 'iOS', udid: 'LOAD-0001' }));
    const body = plistBody({ MessageType: 'Authenticate', UDID: 'LOAD-0001', Topic: h.topic, SerialNumber: 'LOAD0001', OSVersion: '17.4', BuildVersion: '21E219', ProductName: 'iPhone15,2', DeviceName: 'iPhone' });
    expect(await inProgress()).toBe(0);

    const stream = new PassThrough();
    const answer = h.t.app.server.inject({
      method: 'PUT',
      url: `/mdm/apple/${h.tenantId}/checkin`,
      headers: { 'content-type': CHECKIN_CONTENT_TYPE, 'mdm-signature': sign(body, id, h.clock.now()), 'content-length': String(body.length) },
      payload: stream,
    });
    stream.write(body.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(await inProgress()).toBe(1);
    stream.end(body.subarray(10));
    expect((await answer).statusCode).toBe(200);
    expect(await inProgress()).toBe(0);

    const refused = await h.send('checkin', body, null, { signature: null });
    expect(refused.statusCode).toBeGreaterThanOrEqual(400);
    expect(await inProgress()).toBe(0);
  });
});
