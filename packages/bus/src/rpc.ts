import { Reply, Request } from 'zeromq';
import Compile, { type Validator } from 'typebox/compile';
import {
  Codec,
  newId,
  PROTOCOL_VERSION,
  RpcMethods,
  type RpcErrorShape,
  type RpcMethod,
  type RpcParams,
  type RpcReply,
  type RpcRequest,
  type RpcResult,
} from '@polybot/protocol';
import { prepareEndpoint } from './endpoints.js';
import { BusError } from './errors.js';
import { InvalidFrameTracker } from './invalid.js';
import { silentLogger, type BusLogger } from './log.js';

export interface RequesterOptions {
  endpoint: string;
  src: string;
  /** Per-request deadline; the call fails with a retryable `timeout` after it. */
  timeoutMs?: number;
  log?: BusLogger;
}

/**
 * REQ client following the zguide's Lazy Pirate pattern: every request has a deadline, and a
 * socket whose peer did not answer is thrown away and replaced, so a dead or restarted REP can
 * never wedge the REQ state machine. Requests are serialized (REQ is strictly send/receive)
 * and correlated by id, so a late reply is never taken for the next request's answer.
 */
export class BusRequester {
  private sock: Request;
  private readonly codec = new Codec();
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly log: BusLogger;
  requests = 0;
  timeouts = 0;
  reconnects = 0;

  constructor(private readonly opts: RequesterOptions) {
    this.log = opts.log ?? silentLogger;
    this.sock = this.open();
  }

  private open(): Request {
    const sock = new Request({
      relaxed: true,
      correlate: true,
      linger: 0,
      sendTimeout: this.opts.timeoutMs ?? 3000,
      receiveTimeout: this.opts.timeoutMs ?? 3000,
      maxMessageSize: this.codec.limits.maxPayloadBytes + 1024,
    });
    sock.connect(this.opts.endpoint);
    return sock;
  }

  /** Typed call of a method declared in the protocol's RpcMethods. */
  call<M extends RpcMethod>(method: M, params: RpcParams<M>, timeoutMs?: number): Promise<RpcResult<M>> {
    return this.request(method, params as Record<string, unknown>, timeoutMs) as Promise<RpcResult<M>>;
  }

  request(method: string, params: Record<string, unknown>, timeoutMs?: number): Promise<unknown> {
    const run = () => this.exchange(method, params, timeoutMs ?? this.opts.timeoutMs ?? 3000);
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async exchange(method: string, params: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    if (this.closed) throw new BusError('closed', 'requester is closed', false);
    this.requests++;
    const id = newId();
    const req: RpcRequest = { type: 'rpc', id, method, params, v: PROTOCOL_VERSION, src: this.opts.src, seq: this.requests, ts: Date.now() };
    const frames = this.codec.encode(method, req);
    const deadline = Date.now() + timeoutMs;
    try {
      this.sock.sendTimeout = timeoutMs;
      await this.sock.send(frames);
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw Object.assign(new Error('deadline'), { code: 'EAGAIN' });
        this.sock.receiveTimeout = left;
        const reply = await this.sock.receive();
        const res = this.codec.decode(reply);
        if (!res.ok || res.msg.type !== 'rpc.reply') {
          throw new BusError('bad_reply', `bad reply to ${method}: ${res.ok ? res.msg.type : res.reason}`, false);
        }
        const rep = res.msg as RpcReply;
        if (rep.id !== id) continue; // a late answer to an abandoned request
        if (!rep.ok) {
          const e = rep.error ?? { code: 'unknown', message: 'remote error', retryable: false };
          throw new BusError('remote', e.message, e.retryable, e.code);
        }
        return rep.result;
      }
    } catch (err) {
      if (err instanceof BusError) throw err;
      if (this.closed) throw new BusError('closed', 'requester is closed', false);
      if ((err as { code?: string }).code === 'EAGAIN') {
        this.timeouts++;
        this.reset();
        throw new BusError('timeout', `${method} on ${this.opts.endpoint} timed out after ${timeoutMs} ms`, true);
      }
      this.reset();
      throw new BusError('remote', `${method} failed: ${(err as Error).message}`, true);
    }
  }

  private reset(): void {
    this.reconnects++;
    this.sock.close();
    this.sock = this.open();
    this.log.debug({ endpoint: this.opts.endpoint }, 'request socket replaced after a failed exchange');
  }

  get stats() {
    return { requests: this.requests, timeouts: this.timeouts, reconnects: this.reconnects };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    this.sock.close();
  }
}

export type RpcHandler = (params: Record<string, unknown>) => unknown | Promise<unknown>;

export interface ReplierOptions {
  endpoint: string;
  src: string;
  handlers: Record<string, RpcHandler>;
  log?: BusLogger;
}

/** Application errors a handler throws to give the caller a stable code. */
export class RpcFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}

const paramValidators = new Map<string, Validator>(
  Object.entries(RpcMethods).map(([m, s]) => [m, Compile(s.params) as Validator]),
);

/** REP server: validates each request, dispatches to a handler, and always answers. */
export class BusReplier {
  private readonly sock = new Reply({ linger: 0, maxMessageSize: (1 << 20) + 1024 });
  private readonly codec = new Codec();
  private readonly tracker: InvalidFrameTracker;
  private readonly log: BusLogger;
  private loop?: Promise<void>;
  private seq = 0;
  handled = 0;
  failed = 0;

  constructor(private readonly opts: ReplierOptions) {
    this.log = opts.log ?? silentLogger;
    this.tracker = new InvalidFrameTracker(opts.endpoint, this.log);
  }

  async start(): Promise<void> {
    prepareEndpoint(this.opts.endpoint);
    await this.sock.bind(this.opts.endpoint);
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    try {
      for await (const frames of this.sock) {
        const reply = await this.handle(frames);
        await this.sock.send(this.codec.encode('reply', reply));
      }
    } catch (err) {
      if (!this.sock.closed) this.log.error({ err }, 'replier loop ended');
    }
  }

  private reply(id: string, body: { ok: true; result: unknown } | { ok: false; error: RpcErrorShape }): RpcReply {
    return { type: 'rpc.reply', id, ...body, v: PROTOCOL_VERSION, src: this.opts.src, seq: ++this.seq, ts: Date.now() };
  }

  private async handle(frames: Uint8Array[]): Promise<RpcReply> {
    const res = this.codec.decode(frames);
    if (!res.ok || res.msg.type !== 'rpc') {
      const reason = res.ok ? `expected an rpc request, got ${res.msg.type}` : res.reason;
      this.tracker.record({ code: res.ok ? 'unknown_type' : res.code, reason, topic: res.topic, frames });
      this.failed++;
      return this.reply('', { ok: false, error: { code: 'bad_request', message: reason, retryable: false } });
    }
    const req = res.msg as RpcRequest;
    const handler =
      this.opts.handlers[req.method] ??
      (req.method === 'ping' ? () => ({ service: this.opts.src, ts: Date.now() }) : undefined);
    if (!handler) {
      this.failed++;
      return this.reply(req.id, { ok: false, error: { code: 'unknown_method', message: `unknown method ${req.method.slice(0, 64)}`, retryable: false } });
    }
    const v = paramValidators.get(req.method);
    if (v && !v.Check(req.params)) {
      const e = v.Errors(req.params)[0];
      this.failed++;
      return this.reply(req.id, {
        ok: false,
        error: { code: 'bad_params', message: `${req.method}: ${e ? `${e.instancePath || '/'} ${e.message}` : 'invalid params'}`, retryable: false },
      });
    }
    try {
      const result = await handler(req.params);
      this.handled++;
      return this.reply(req.id, { ok: true, result: result ?? null });
    } catch (err) {
      this.failed++;
      if (err instanceof RpcFailure) {
        return this.reply(req.id, { ok: false, error: { code: err.code, message: err.message, retryable: err.retryable } });
      }
      this.log.error({ err, method: req.method }, 'rpc handler failed');
      return this.reply(req.id, { ok: false, error: { code: 'internal', message: (err as Error).message.slice(0, 500), retryable: true } });
    }
  }

  get stats() {
    return { handled: this.handled, failed: this.failed, invalid: this.tracker.total };
  }

  async close(): Promise<void> {
    this.sock.close();
    await this.loop;
  }
}
