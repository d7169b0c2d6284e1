import { Type, type TProperties, type TSchema } from 'typebox';

/**
 * Shared TypeBox pieces for Graph request bodies. Bodies refuse unknown properties
 * (additionalProperties: false) and always allow the @odata.type clients copy into them.
 */

export const ODataType = Type.Optional(Type.String({ description: 'OData type discriminator, e.g. #microsoft.graph.user' }));

export function GraphBody<P extends TProperties>(properties: P, options: { description?: string } = {}) {
  return Type.Object({ ...properties, '@odata.type': ODataType }, { additionalProperties: false, ...options });
}

export const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** Graph query options, documented for OpenAPI; parsed and validated by graph/odata. */
export const ODataQueryString = Type.Object(
  {
    $top: Type.Optional(Type.String({ description: 'Page size (0-999)' })),
    $skip: Type.Optional(Type.String()),
    $skiptoken: Type.Optional(Type.String()),
    $filter: Type.Optional(Type.String({ description: 'eq, ne, lt, gt, le, ge, startswith, contains, endswith, and, or, not' })),
    $select: Type.Optional(Type.String()),
    $orderby: Type.Optional(Type.String()),
    $count: Type.Optional(Type.String({ description: 'true to include @odata.count' })),
  },
  { additionalProperties: true },
);

/** {"@odata.id": "https://…/directoryObjects/{id}"} as used by $ref endpoints. */
export const ODataRefBody = Type.Object({ '@odata.id': Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false });

export const RoleScopeTagIds = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 100 });

/** Pulls the trailing id out of an @odata.id URL (…/users/{id} or …/users('{id}')). */
export function idFromODataRef(ref: string): string | undefined {
  const m = /\/([^/()]+)(?:\('((?:[^']|'')+)'\)|\(([^)']+)\))?\/?$/.exec(ref);
  if (!m) return undefined;
  try {
    // OData doubles a quote inside a quoted key ('O''Brien'), whether or not it is percent-encoded.
    if (m[2] !== undefined) return decodeURIComponent(m[2]).replace(/''/g, "'");
    if (m[3] !== undefined) {
      const key = decodeURIComponent(m[3]); // quotes may arrive as %27
      return /^'(?:[^']|'')+'$/.test(key) ? key.slice(1, -1).replace(/''/g, "'") : key;
    }
    return m[1] ? decodeURIComponent(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
