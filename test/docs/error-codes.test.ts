/** Every stable error code, of the wire and of each package, is documented in the README's "Error codes". */
import { readFile } from 'node:fs/promises';
import { ERROR_CODES as GANYMEDE_CODES } from '@ganymede/app-ganymede';
import { ERROR_CODES as GATEWAY_CODES } from '@ganymede/app-gateway';
import { ERROR_CODES as WIRE_CODES } from '@ganymede/contracts';
import { expect, it } from 'vitest';

it('the README lists every error code, each in a table row of its own', async () => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('## Configuration and CLIs'));
  const listed = new Set([...section.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]));
  const codes = [...WIRE_CODES, ...Object.keys(GANYMEDE_CODES), ...Object.keys(GATEWAY_CODES)];
  expect(codes.filter((code) => !listed.has(code))).toEqual([]);
  expect([...listed].filter((code) => !codes.includes(code as never))).toEqual([]);
});
