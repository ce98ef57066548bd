import { type AppRoute, isAppRouteOtherResponse, isZodType } from '@ts-rest/core';
import { describe, expect, it } from 'vitest';
import type { ZodTypeAny } from 'zod';
import { ganymedeContract, ganymedeExamples, gatewayContract, gatewayExamples } from '../src/index.js';

type Example = { request: { body?: unknown; headers?: unknown; params?: unknown }; responses: Record<number, unknown> };

const suites: [string, Record<string, AppRoute>, Record<string, Example>][] = [
  ['ganymede', ganymedeContract, ganymedeExamples],
  ['gateway', gatewayContract, gatewayExamples],
];

describe.each(suites)('%s examples', (_name, contract, examples) => {
  it('cover every route', () => {
    expect(Object.keys(examples).sort()).toEqual(Object.keys(contract).sort());
  });

  for (const [name, route] of Object.entries(contract)) {
    const example = examples[name]!;
    it(`${name}: one example for each declared status, each valid`, () => {
      expect(Object.keys(example.responses).sort()).toEqual(Object.keys(route.responses).sort());
      for (const [status, body] of Object.entries(example.responses)) {
        const response = route.responses[Number(status)]!;
        // A response of another media type (the metrics' text) carries its schema as `body`.
        const schema = (isAppRouteOtherResponse(response) ? response.body : response) as ZodTypeAny;
        expect(schema.safeParse(body).success, `${name} ${status}`).toBe(true);
      }
    });
    it(`${name}: the example request is valid`, () => {
      const parts = [
        ['body' in route ? route.body : undefined, example.request.body],
        [route.headers, example.request.headers],
        [route.pathParams, example.request.params],
      ] as const;
      for (const [schema, value] of parts) {
        if (isZodType(schema)) expect(schema.safeParse(value).success).toBe(true);
      }
    });
  }
});
