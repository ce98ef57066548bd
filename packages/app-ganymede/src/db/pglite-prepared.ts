import { parse, type PGlite, protocol } from '@electric-sql/pglite';

const { serialize } = protocol;

interface Prepared {
  name: string;
  /** The parameters' type OIDs, as the server inferred them: each value is serialized for its type. */
  paramTypes: number[];
}

const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

/**
 * Named prepared statements on PGlite, as `pg` keeps them on PostgreSQL (postgres.ts). PGlite's own `query` parses
 * and plans its text on every call, in six calls into the engine (parse, describe, bind, describe, execute, sync);
 * the state machine's statements are CTEs whose planning costs more than running them. Here a text is parsed once
 * per database, and each call after that is one call into the engine: bind, describe, execute and sync together.
 * Values are serialized and rows parsed by PGlite's own serializers and parsers, as its `query` does.
 * Not for use inside a transaction: it takes PGlite's exclusive lock, which a transaction holds.
 */
export function preparedStatements(db: PGlite) {
  const statements = new Map<string, Prepared>();

  async function prepare(text: string): Promise<Prepared> {
    const name = `g_${statements.size + 1}`;
    const { messages } = await db.execProtocol(
      concat([serialize.parse({ name, text }), serialize.describe({ type: 'S', name }), serialize.sync()]),
    );
    const description = messages.find((m) => m.name === 'parameterDescription') as { dataTypeIDs: number[] } | undefined;
    const prepared = { name, paramTypes: description?.dataTypeIDs ?? [] };
    statements.set(text, prepared);
    return prepared;
  }

  return function query(text: string, params: unknown[]) {
    return db.runExclusive(async () => {
      const { name, paramTypes } = statements.get(text) ?? (await prepare(text));
      const values = params.map((value, i) => {
        if (value === null || value === undefined) return null;
        const serializer = db.serializers[paramTypes[i]!];
        // A type PGlite has no serializer of (text, uuid, …): the value's text; numbers and booleans as JSON writes them.
        return serializer ? serializer(value) : typeof value === 'string' ? value : JSON.stringify(value);
      });
      const { messages } = await db.execProtocol(
        concat([serialize.bind({ statement: name, values }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]),
      );
      return parse.parseResults(messages, db.parsers)[0]!;
    });
  };
}
