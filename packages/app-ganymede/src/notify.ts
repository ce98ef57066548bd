import { gatewayContract, platformGatewayContract } from '@ganymede/contracts';
import { request } from 'undici';

/**
 * Tells an idle gateway it was just allocated and waits until it claimed the allocation (its 200). `noticeToken`
 * (`Tokens.signNotice`) proves the notice comes from Ganymede: the gateway refuses one without it (401) before
 * it asks Ganymede anything. Any other outcome (refused, timed out, an error status, a body off the contract) is
 * a failure.
 */
export async function notifyAllocated(gatewayUrl: string, allocationId: string, noticeToken: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await request(new URL(gatewayContract.allocated.path, gatewayUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${noticeToken}` },
      body: JSON.stringify({ allocation_id: allocationId }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.body.json().catch(() => null);
    return res.statusCode === 200 && gatewayContract.allocated.responses[200].safeParse(body).success;
  } catch {
    return false;
  }
}

/**
 * Tells an idle platform gateway (protocol v1) it was just allocated, the way the platform's Ganymede did: `GET
 * /collab/ping`, then `POST /collab/start` with `{}`, which it answers once it has read /gateway/config. Only the
 * statuses are read (its answers are `{}`). It takes no notice token (it would not check one) and claims nothing:
 * its 2xx is its acceptance. Both calls share the one timeout.
 */
export async function notifyPlatformGateway(gatewayUrl: string, timeoutMs: number): Promise<boolean> {
  const signal = AbortSignal.timeout(timeoutMs);
  const { collabPing, collabStart } = platformGatewayContract;
  try {
    const ping = await request(new URL(collabPing.path, gatewayUrl), { method: collabPing.method, signal });
    await ping.body.dump();
    if (ping.statusCode < 200 || ping.statusCode > 299) return false;
    const start = await request(new URL(collabStart.path, gatewayUrl), {
      method: collabStart.method,
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal,
    });
    await start.body.dump();
    return start.statusCode >= 200 && start.statusCode <= 299;
  } catch {
    return false;
  }
}
