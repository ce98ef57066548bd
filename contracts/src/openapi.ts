/**
 * Ganymede's API in OpenAPI 3, generated from the contract. `contracts/openapi.json` is this document, committed
 * (`pnpm openapi` writes it; a test fails when it differs); Ganymede serves it at `/openapi.json`.
 */
import { type AppRoute, isAppRouteOtherResponse } from '@ts-rest/core';
import { generateOpenApi } from '@ts-rest/open-api';
import { ganymedeContract } from './contract.js';
import { ErrorBody } from './schemas.js';

const ERROR_REF = { $ref: '#/components/schemas/ErrorBody' };

/** The API's version in the document (the contracts package's). */
const API_VERSION = '0.1.0';

type Operation = { responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }> };

export function ganymedeOpenApi() {
  let errorSchema: unknown;
  const document = generateOpenApi(
    ganymedeContract,
    {
      info: {
        title: 'Ganymede',
        version: API_VERSION,
        description:
          'The control plane that allocates gateways from a pool to organizations. Errors answer `{error, message}` with a stable code.',
      },
    },
    {
      setOperationId: true,
      // Every error status answers the one error body: one shared schema, not a copy per status of every route.
      // A response of another media type (the metrics' text) is not JSON: the generator leaves it without content.
      operationMapper: (operation, route: AppRoute) => {
        const { responses } = operation as Operation;
        for (const [status, response] of Object.entries(route.responses)) {
          const generated = responses[status]!;
          if (response === ErrorBody) {
            errorSchema ??= generated.content?.['application/json']?.schema;
            generated.content = { 'application/json': { schema: ERROR_REF } };
          } else if (isAppRouteOtherResponse(response)) {
            generated.content = { [response.contentType]: { schema: { type: 'string' } } };
          }
        }
        return operation;
      },
    },
  );
  return { ...document, components: { schemas: { ErrorBody: errorSchema } } };
}

/** The document as committed in `contracts/openapi.json`: two-space JSON and a final newline. */
export const openApiText = () => `${JSON.stringify(ganymedeOpenApi(), null, 2)}\n`;

/** Where the committed document lives. */
export const OPENAPI_FILE = new URL('../openapi.json', import.meta.url);
