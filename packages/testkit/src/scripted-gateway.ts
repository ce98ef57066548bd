/**
 * A gateway driven step by step through Ganymede's API, as a gateway process would call it (its notices go to a
 * stand-in): for tests that watch the pool change (the CLI's `status --watch`, the dashboard) and must see each
 * state for as long as they like, which a real restart (over in a fraction of a second) would not allow.
 */
import { randomUUID } from 'node:crypto';
import { adminToken, type GanymedeProcess, startOrganization } from './ganymede-process.js';
import { noticeTarget } from './notice-target.js';

export interface ScriptedGateway {
  gatewayId: string;
  /** The allocation once `allocate()` ran. */
  allocationId(): string;
  /** A user asks for a new organization's gateway; this gateway claims it (active, epoch 1). */
  allocate(): Promise<void>;
  /** The gateway's shutdown for a reload: `POST /gateway/restart` (restarting). */
  restart(): Promise<void>;
  /** The restarted process says ready (reclaimed, epoch + 1). */
  reclaim(): Promise<void>;
  close(): Promise<void>;
}

export async function scriptedGateway(g: GanymedeProcess): Promise<ScriptedGateway> {
  const target = await noticeTarget();
  const added = await g.api.addGateway({ headers: { authorization: `Bearer ${await adminToken(g)}` }, body: { url: target.url } });
  if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
  const gateway = { authorization: `Bearer ${added.body.token}` };
  const ready = async (allocationId: string | null) => {
    const res = await g.api.ready({ headers: gateway, body: { allocation_id: allocationId, instance_id: randomUUID() } });
    if (res.status !== 200) throw new Error(`ready answered ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  await ready(null);
  let allocation: { id: string; epoch: number; org: { authorization: string } } | undefined;
  const held = () => {
    if (!allocation) throw new Error('allocate() first');
    return allocation;
  };
  return {
    gatewayId: added.body.gateway_id,
    allocationId: () => held().id,
    async allocate() {
      const { res } = await startOrganization(g);
      if (res.status !== 201) throw new Error(`start answered ${res.status} ${JSON.stringify(res.body)}`);
      const config = await g.api.config({ headers: gateway, body: {} });
      if (config.status !== 200) throw new Error(`config answered ${config.status}`);
      const claimed = await ready(res.body.allocation_id);
      allocation = {
        id: res.body.allocation_id,
        epoch: claimed.allocation!.epoch,
        org: { authorization: `Bearer ${config.body.organization_token}` },
      };
    },
    async restart() {
      const a = held();
      const res = await g.api.restart({ headers: a.org, body: { reason: 'reload', epoch: a.epoch } });
      if (res.status !== 200) throw new Error(`restart answered ${res.status} ${JSON.stringify(res.body)}`);
    },
    async reclaim() {
      const a = held();
      a.epoch = (await ready(a.id)).allocation!.epoch;
    },
    close: () => target.close(),
  };
}
