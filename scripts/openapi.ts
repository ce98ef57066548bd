/** `pnpm openapi`: writes Ganymede's OpenAPI document, generated from the contract, to contracts/openapi.json. */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { OPENAPI_FILE, openApiText } from '@ganymede/contracts/openapi';

await writeFile(OPENAPI_FILE, openApiText());
process.stdout.write(`wrote ${fileURLToPath(OPENAPI_FILE)}\n`);
