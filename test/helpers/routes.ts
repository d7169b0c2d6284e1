import type { FastifyInstance } from 'fastify';

/** Every route of the running app, read from Fastify's route tree (printRoutes with commonPrefix off). */
export function listRoutes(server: FastifyInstance): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of server.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const segment = m[2]!;
    const parent = stack[depth - 1] ?? '';
    stack[depth] = parent + (segment.startsWith('/') || parent.endsWith('/') || parent === '' ? '' : '/') + segment;
    for (const method of m[3]?.split(', ') ?? []) out.push({ method, url: stack[depth]! });
  }
  return out;
}

/** Admin API routes only (/beta and /v1.0), as the app recorded them when they were added (HEAD included). */
export const adminRoutes = (app: { routes: readonly { method: string; url: string }[] }) =>
  app.routes.filter((r) => /^\/(beta|v1\.0)\//.test(r.url));

/** A concrete URL for a route pattern: every path parameter gets a value chosen from the segment before it. */
export function fillRoute(pattern: string, idFor: (segmentBefore: string, param: string) => string = () => '1'): string {
  const parts = pattern.split('/');
  return parts
    .map((p, i) => (p.startsWith(':') ? encodeURIComponent(idFor(parts[i - 1] ?? '', p.slice(1).replace(/\(.*$/, ''))) : p === '*' ? '1' : p))
    .join('/');
}
