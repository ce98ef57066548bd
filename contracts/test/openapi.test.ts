import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ganymedeContract } from '../src/index.js';
import { ganymedeOpenApi, OPENAPI_FILE, openApiText } from '../src/openapi.js';

describe('the OpenAPI document', () => {
  it('committed in contracts/openapi.json is the one the contract generates now (run `pnpm openapi` after changing the contract)', async () => {
    expect(await readFile(OPENAPI_FILE, 'utf8')).toBe(openApiText());
  });

  it('describes every route of the contract, each error status with the shared error body', () => {
    const document = ganymedeOpenApi();
    const operations = Object.values(document.paths).flatMap((item) => Object.values(item as Record<string, { operationId: string }>));
    expect(operations.map((o) => o.operationId).sort()).toEqual(Object.keys(ganymedeContract).sort());
    const start = (document.paths['/gateway/start'] as { post: { responses: Record<string, { content: object }> } }).post;
    expect(start.responses['503']!.content).toEqual({ 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } });
    expect(Object.keys(document.components.schemas)).toEqual(['ErrorBody']);
  });
});
