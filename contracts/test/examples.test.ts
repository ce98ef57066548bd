import { type AppRoute, isAppRouteOtherResponse, isZodType } from '@ts-rest/core';
import { describe, expect, it } from 'vitest';
import type { ZodTypeAny } from 'zod';
import {
  ganymedeContract,
  ganymedeExamples,
  gatewayContract,
  gatewayExamples,
  platformGatewayBodies,
  platformGatewayContract,
  platformGatewayExamples,
} from '../src/index.js';

type Example = { request: { body?: unknown; headers?: unknown; params?: unknown }; responses: Record<number, unknown> };

const suites: [string, Record<string, AppRoute>, Record<string, Example>][] = [
  ['ganymede', ganymedeContract, ganymedeExamples],
  ['gateway', gatewayContract, gatewayExamples],
  ['platform gateway', platformGatewayContract, platformGatewayExamples],
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

describe("the platform gateway's bodies", () => {
  it('ready {gateway_id} is an idle ready that keeps the id; anything more or less is refused', () => {
    expect(ganymedeContract.ready.body.parse(platformGatewayBodies.ready)).toEqual({
      allocation_id: null,
      gateway_id: platformGatewayBodies.ready.gateway_id,
    });
    for (const bad of [{ gateway_id: 'gw-1' }, { ...platformGatewayBodies.ready, allocation_id: null }, {}]) {
      expect(ganymedeContract.ready.body.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
  it('stop {} means reason stop; a null reason is still refused', () => {
    expect(ganymedeContract.stop.body.parse(platformGatewayBodies.stop)).toEqual({ reason: 'stop' });
    expect(ganymedeContract.stop.body.safeParse({ reason: null }).success).toBe(false);
  });
});
