import { gatewayContract } from '@ganymede/contracts';
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
