import { Forwarder } from '@polybot/bus';
import { serviceConfig, type Service, type ServiceContext } from '@polybot/core';
import Type, { type Static } from 'typebox';

export const BusConfig = serviceConfig({
  POLYBOT_BUS_HWM: Type.Integer({ minimum: 100, maximum: 10_000_000, default: 100_000 }),
});
export type BusConfig = Static<typeof BusConfig>;

/** The events forwarder: XSUB `events.in` → XPUB `events.pub`, on zeromq's own Proxy. */
export function createBusService(ctx: ServiceContext<BusConfig>): Service {
  const fwd = new Forwarder({
    frontend: ctx.endpoints['events.in'],
    backend: ctx.endpoints['events.pub'],
    highWaterMark: ctx.config.POLYBOT_BUS_HWM,
  });
  const startedAt = Date.now();
  return {
    async start() {
      await fwd.start();
      ctx.log.info({ frontend: ctx.endpoints['events.in'], backend: ctx.endpoints['events.pub'] }, 'forwarding events');
    },
    async stop() {
      await fwd.stop();
    },
    metrics: () => ({ uptime_s: Math.round((Date.now() - startedAt) / 1000) }),
  };
}
