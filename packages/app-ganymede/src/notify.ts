import { gatewayContract } from '@ganymede/contracts';
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
