// A workload of its own: a counter per organization, over HTTP. Run it with
// `new Gateway({ config: loadConfig(process.env), logger, workload: counter }).start()`.
import type { OrganizationState, StateContext, Workload } from '@ganymede/app-gateway';

class Counter implements OrganizationState {
  value = 0;
  constructor(private readonly context: StateContext) {}
  increment(): number {
    this.value++;
    this.context.changed(); // the next autosave pushes it
    return this.value;
  }
  snapshot(): Uint8Array {
    return Buffer.from(String(this.value));
  }
  restore(bytes: Uint8Array): void {
    this.value = Number(Buffer.from(bytes).toString()) || 0;
  }
}

export const counter: Workload = {
  createState: (context) => new Counter(context),
  routes(app, host) {
    app.post<{ Params: { organization_id: string } }>('/orgs/:organization_id/counter', async (request, reply) => {
      const state = host.state(request.params.organization_id);
      if (!(state instanceof Counter)) return reply.status(404).send({ error: 'not_found', message: 'not served here' });
      return { value: state.increment() };
    });
  },
};
