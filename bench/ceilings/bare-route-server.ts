import fs from 'node:fs';
import Fastify from 'fastify';

/**
 * The HTTP ceiling, run as a process of its own like the server under test: Fastify over the same
 * TLS certificate, one PUT route at the MDM server path that reads the body the devices send and
 * answers what an idle check-in gets (200, empty body), with no logging, auth or store.
 * argv: <port> <certFile> <keyFile>. Prints "ready" once listening.
 */

const [port, certFile, keyFile] = process.argv.slice(2);
if (!port || !certFile || !keyFile) throw new Error('usage: bare-route-server <port> <certFile> <keyFile>');
const app = Fastify({ logger: false, https: { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) } });
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.put('/mdm/apple/:tenant/server', async (req, reply) => {
  // Touch the body and the signature header, as the real route must.
  if (!Buffer.isBuffer(req.body) || req.body.length === 0 || !req.headers['mdm-signature']) return reply.code(400).send();
  return reply.code(200).send();
});
await app.listen({ port: Number(port), host: '127.0.0.1' });
console.log('ready');
