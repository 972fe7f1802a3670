import { Proxy, XPublisher, XSubscriber } from 'zeromq';
import { prepareEndpoint } from './endpoints.js';

export interface ForwarderOptions {
  /** XSUB side that every publisher connects to (`events.in`). */
  frontend: string;
  /** XPUB side that every subscriber connects to (`events.pub`). */
  backend: string;
  highWaterMark?: number;
}

/** The events forwarder, on zeromq's own Proxy: many publishers → one stream. */
export class Forwarder {
  private readonly proxy: Proxy<XSubscriber, XPublisher>;
  private running?: Promise<void>;

  constructor(private readonly opts: ForwarderOptions) {
    const hwm = opts.highWaterMark ?? 100_000;
    this.proxy = new Proxy(
      new XSubscriber({ receiveHighWaterMark: hwm, linger: 0 }),
      new XPublisher({ sendHighWaterMark: hwm, linger: 0 }),
    );
  }

  async start(): Promise<void> {
    prepareEndpoint(this.opts.frontend);
    prepareEndpoint(this.opts.backend);
    await this.proxy.frontEnd.bind(this.opts.frontend);
    await this.proxy.backEnd.bind(this.opts.backend);
    this.running = this.proxy.run();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.proxy.terminate();
    await this.running.catch(() => undefined);
    this.proxy.frontEnd.close();
    this.proxy.backEnd.close();
  }
}
