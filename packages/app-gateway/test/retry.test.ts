import { UnknownStatusError } from '@ts-rest/core';
import { describe, expect, it } from 'vitest';
import { GanymedeAnswerError, GanymedeTimeoutError, GatewayError } from '../src/errors.js';
import { backoffDelay, isTransient, retry } from '../src/retry.js';

/** A clock that only moves when the fake sleep is called. */
function fakeTime() {
  let now = 0;
  const delays: number[] = [];
  return {
    delays,
    now: () => now,
    sleep: async (ms: number) => {
      delays.push(ms);
      now += ms;
    },
  };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('backoffDelay', () => {
  it('is below min(cap, base * 2^attempt) (full jitter)', () => {
    const options = { baseMs: 100, capMs: 5_000 };
    expect([0, 1, 2, 3, 6, 20].map((a) => backoffDelay(a, options, () => 0.999999))).toEqual([99, 199, 399, 799, 4999, 4999]);
    expect(backoffDelay(5, options, () => 0)).toBe(0);
  });
});

describe('isTransient', () => {
  it('retries network errors, timeouts and 5xx; not 4xx nor other errors', () => {
    expect(isTransient(refused())).toBe(true);
    expect(isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransient(new GanymedeTimeoutError('POST /gateway/config', 100))).toBe(true);
    expect(isTransient(new GanymedeAnswerError('x', { status: 500, body: {} }))).toBe(true);
    expect(isTransient(new UnknownStatusError({ status: 503, body: '' }, ['200']))).toBe(true);
    expect(isTransient(new UnknownStatusError({ status: 418, body: '' }, ['200']))).toBe(false);
    expect(isTransient(new GanymedeAnswerError('x', { status: 401, body: {} }))).toBe(false);
    expect(isTransient(new Error('bug'))).toBe(false);
  });
});

describe('retry', () => {
  it('retries transient failures with growing jittered delays until success', async () => {
    const time = fakeTime();
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        if (calls < 4) throw refused();
        return 'ok';
      },
      { ...time, random: () => 0.5 },
    );
    expect(result).toBe('ok');
    expect(time.delays).toEqual([50, 100, 200]);
  });

  it('does not retry a non-transient failure', async () => {
    const time = fakeTime();
    const error = new GanymedeAnswerError('x', { status: 401, body: {} });
    await expect(retry(async () => Promise.reject(error), time)).rejects.toBe(error);
    expect(time.delays).toEqual([]);
  });

  it('gives up once the total budget would be exceeded, keeping the last error as cause', async () => {
    const time = fakeTime();
    const failure = retry(async () => Promise.reject(refused()), { ...time, random: () => 0.999, totalMs: 10_000 });
    await expect(failure).rejects.toBeInstanceOf(GatewayError);
    await expect(failure).rejects.toMatchObject({ code: 'RETRY_GAVE_UP', cause: { code: 'ECONNREFUSED' } });
    expect(time.delays.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000);
    expect(Math.max(...time.delays)).toBeLessThanOrEqual(5_000);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('shutting down');
    let calls = 0;
    const failure = retry(
      async () => {
        calls++;
        controller.abort(reason);
        throw refused();
      },
      { signal: controller.signal },
    );
    await expect(failure).rejects.toBe(reason);
    expect(calls).toBe(1);
  });
});
