import { gatewayContract, platformGatewayContract } from '@ganymede/contracts';
import { request } from 'undici';

/** Why a gateway did not take a notice. */
export type NoticeFailure = 'unreachable' | 'timeout' | 'refused' | 'invalid_answer';

/**
 * Tells an idle gateway it was just allocated and waits until it claimed the allocation (its 200). `noticeToken`
 * (`Tokens.signNotice`) proves the notice comes from Ganymede: the gateway refuses one without it (401) before
 * it asks Ganymede anything. Answers null when the gateway took it; otherwise why not (refused: an error status;
 * invalid_answer: a 200 off the contract).
 */
export async function notifyAllocated(
  gatewayUrl: string,
  allocationId: string,
  noticeToken: string,
  timeoutMs: number,
): Promise<NoticeFailure | null> {
  try {
    const res = await request(new URL(gatewayContract.allocated.path, gatewayUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${noticeToken}` },
      body: JSON.stringify({ allocation_id: allocationId }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.body.json().catch(() => null);
    if (res.statusCode !== 200) return 'refused';
    return gatewayContract.allocated.responses[200].safeParse(body).success ? null : 'invalid_answer';
  } catch (error) {
    return (error as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable';
  }
}

/**
 * Tells an idle platform gateway (protocol v1) it was just allocated, the way the platform's Ganymede did: `GET
 * /collab/ping`, then `POST /collab/start` with `{}`, which it answers once it has read /gateway/config. Only the
 * statuses are read (its answers are `{}`). It takes no notice token (it would not check one) and claims nothing:
 * its 2xx is its acceptance. Both calls share the one timeout. Answers null when it took it; otherwise why not.
 */
export async function notifyPlatformGateway(gatewayUrl: string, timeoutMs: number): Promise<NoticeFailure | null> {
  const signal = AbortSignal.timeout(timeoutMs);
  const { collabPing, collabStart } = platformGatewayContract;
  try {
    const ping = await request(new URL(collabPing.path, gatewayUrl), { method: collabPing.method, signal });
    await ping.body.dump();
    if (ping.statusCode < 200 || ping.statusCode > 299) return 'refused';
    const start = await request(new URL(collabStart.path, gatewayUrl), {
      method: collabStart.method,
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal,
    });
    await start.body.dump();
    return start.statusCode >= 200 && start.statusCode <= 299 ? null : 'refused';
  } catch (error) {
    return (error as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable';
  }
}
