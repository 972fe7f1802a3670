import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * A PUB socket owned by a thread of its own. The publishing thread copies each message (topic and
 * payload) into a shared ring and goes on; the sender thread hands them to ZeroMQ. zeromq.js spends
 * 1.5–3 µs of native work per message sent, which a market-data publisher would otherwise pay on
 * its own event loop. Messages keep their order, nothing is dropped on our side (a full ring holds
 * the rest in memory until the sender catches up), and the wire is the same socket's.
 */

/** Control words (Int32) at the start of the shared memory. */
const HEAD = 0; // next byte the publisher writes (offset into the ring)
const TAIL = 1; // next byte the sender reads
const SENT = 2; // messages handed to ZeroMQ
const FAILED = 3; // messages ZeroMQ refused
const STOP = 4; // 1: send what is queued, close the socket and exit
const CONTROL_WORDS = 8;
/** A record header whose topic length is this means "continue at offset 0". */
const WRAP = -1;
const align4 = (n: number) => (n + 3) & ~3;
/** Node 20 has Atomics.waitAsync; TypeScript's ES2022 library does not declare it. */
type WaitAsyncResult = { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync(ta: Int32Array, index: number, value: number, timeoutMs?: number): WaitAsyncResult }).waitAsync;

/** The sender thread: plain JavaScript, evaluated as the worker's script. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Publisher } = require(workerData.zeromq);
const ctrl = new Int32Array(workerData.shared, 0, ${CONTROL_WORDS});
const ring = new Uint8Array(workerData.shared, ${CONTROL_WORDS * 4});
const ringI32 = new Int32Array(workerData.shared, ${CONTROL_WORDS * 4});
const cap = ring.length;
const sock = new Publisher(workerData.socket);
let sent = 0;
let failed = 0;
const onLate = () => { failed++; sent--; };
async function run() {
  try {
    if (workerData.mode === 'bind') await sock.bind(workerData.endpoint);
    else sock.connect(workerData.endpoint);
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
    return;
  }
  parentPort.postMessage({ ready: true });
  // A pending Atomics.waitAsync does not keep a thread's event loop alive; this does.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let tail = Atomics.load(ctrl, ${TAIL});
  for (;;) {
    const head = Atomics.load(ctrl, ${HEAD});
    let n = 0;
    while (tail !== head) {
      const tlen = ringI32[tail >> 2];
      if (tlen === ${WRAP}) { tail = 0; continue; }
      const plen = ringI32[(tail >> 2) + 1];
      const t0 = tail + 8;
      const p0 = t0 + ((tlen + 3) & ~3);
      // Copies: the ring's bytes are rewritten once the tail moves past them.
      const topic = Buffer.from(ring.subarray(t0, t0 + tlen));
      const payload = Buffer.from(ring.subarray(p0, p0 + plen));
      tail = p0 + ((plen + 3) & ~3);
      if (tail >= cap) tail = 0;
      try {
        sock.send([topic, payload]).catch(onLate);
        sent++;
      } catch {
        failed++;
      }
      // Let zeromq.js release sent buffers (its callbacks run on this loop) during long bursts.
      if (++n === 4096) break;
    }
    Atomics.store(ctrl, ${TAIL}, tail);
    Atomics.store(ctrl, ${SENT}, sent);
    Atomics.store(ctrl, ${FAILED}, failed);
    Atomics.notify(ctrl, ${TAIL});
    if (n === 4096) { await new Promise((r) => setImmediate(r)); continue; }
    if (Atomics.load(ctrl, ${STOP}) === 1 && Atomics.load(ctrl, ${HEAD}) === tail) break;
    const w = Atomics.waitAsync(ctrl, ${HEAD}, head);
    if (w.async) await w.value;
  }
  clearInterval(keepAlive);
  sock.close();
  parentPort.postMessage({ closed: true });
}
run();
`;

export interface ThreadSenderOptions {
  endpoint: string;
  mode: 'bind' | 'connect';
  sendHighWaterMark: number;
  /** Bytes of the shared ring (messages waiting for the sender thread). */
  ringBytes?: number;
  onError: (err: unknown) => void;
}

export class ThreadSender {
  private readonly shared: SharedArrayBuffer;
  private readonly ctrl: Int32Array;
  private readonly ring: Uint8Array;
  private readonly ringI32: Int32Array;
  private readonly cap: number;
  private readonly worker: Worker;
  private head = 0;
  /** Messages that did not fit in the ring, in order, waiting for room. */
  private overflow: Array<[Uint8Array, Uint8Array]> = [];
  private notifyQueued = false;
  private waitingForRoom = false;
  private written = 0;
  private shut = false;
  private exited = false;
  private readonly ready: Promise<void>;
  private readonly exit: Promise<void>;
  dropped = 0;

  constructor(opts: ThreadSenderOptions) {
    const ringBytes = align4(opts.ringBytes ?? 8 * 1024 * 1024);
    this.shared = new SharedArrayBuffer(CONTROL_WORDS * 4 + ringBytes);
    this.ctrl = new Int32Array(this.shared, 0, CONTROL_WORDS);
    this.ring = new Uint8Array(this.shared, CONTROL_WORDS * 4);
    this.ringI32 = new Int32Array(this.shared, CONTROL_WORDS * 4);
    this.cap = ringBytes;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        shared: this.shared,
        zeromq: createRequire(import.meta.url).resolve('zeromq'),
        endpoint: opts.endpoint,
        mode: opts.mode,
        // sendTimeout 0: a PUB socket never waits; past the high-water mark ZeroMQ drops for that subscriber.
        socket: { sendHighWaterMark: opts.sendHighWaterMark, linger: 500, sendTimeout: 0 },
      },
    });
    this.worker.unref();
    let failStart: (err: Error) => void = () => {};
    this.ready = new Promise((resolve, reject) => {
      failStart = reject;
      this.worker.on('message', (m: { ready?: boolean; error?: string }) => {
        if (m.ready) resolve();
        else if (m.error) reject(new Error(`publisher thread could not ${opts.mode} ${opts.endpoint}: ${m.error}`));
      });
    });
    // Whoever calls start() sees a failure; an unstarted sender must not crash the process with it.
    this.ready.catch(() => {});
    this.exit = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.exited = true;
        this.shut = true;
        failStart(new Error(`publisher thread for ${opts.endpoint} exited (code ${code})`));
        resolve();
      });
    });
    this.worker.on('error', (err) => {
      this.shut = true;
      opts.onError(err);
    });
  }

  /** Resolves once the socket is bound or connected in the sender thread. */
  start(): Promise<void> {
    return this.ready;
  }

  get sent(): number {
    return Atomics.load(this.ctrl, SENT);
  }

  get failed(): number {
    return Atomics.load(this.ctrl, FAILED);
  }

  /** Messages not yet handed to ZeroMQ. */
  get length(): number {
    return this.written - this.sent - this.failed;
  }

  /**
   * Copies a message into the ring (or behind it when full); false once closing. `transient`: the
   * payload is valid only during this call (a view of an encoder's buffer), so a message that must
   * wait gets a copy of its own.
   */
  enqueue(frames: [Uint8Array, Uint8Array], transient = false): boolean {
    if (this.shut) {
      this.dropped++;
      return false;
    }
    if (this.overflow.length > 0 || !this.write(frames[0], frames[1])) {
      // Topic frames are cached per topic and never change; slab payloads stay valid.
      this.overflow.push(transient ? [frames[0], frames[1].slice()] : frames);
      this.waitForRoom();
    }
    this.written++;
    if (!this.notifyQueued) {
      this.notifyQueued = true;
      queueMicrotask(this.notify);
    }
    return true;
  }

  private readonly notify = () => {
    this.notifyQueued = false;
    Atomics.notify(this.ctrl, HEAD);
  };

  /** Writes one record at the head; false when the ring has no room for it now. */
  private write(topic: Uint8Array, payload: Uint8Array): boolean {
    const need = 8 + align4(topic.length) + align4(payload.length);
    if (need + 8 > this.cap) throw new RangeError(`a message of ${need} bytes does not fit the publisher's ring of ${this.cap}`);
    const tail = Atomics.load(this.ctrl, TAIL);
    let head = this.head;
    // Free bytes ahead of the head, keeping one word so a full ring never looks empty.
    // (At the end with the tail at 0, the head must not reach the end either: it would wrap onto it.)
    const ahead = head >= tail ? this.cap - head - (tail === 0 ? 4 : 0) : tail - head - 4;
    if (need > ahead) {
      if (head < tail) return false;
      // Room at the front? The sender never reads past a wrap marker.
      if (need > tail - 4) return false;
      this.ringI32[head >> 2] = WRAP;
      head = 0;
    }
    this.ringI32[head >> 2] = topic.length;
    this.ringI32[(head >> 2) + 1] = payload.length;
    this.ring.set(topic, head + 8);
    this.ring.set(payload, head + 8 + align4(topic.length));
    head += need;
    if (head >= this.cap) head = 0;
    this.head = head;
    // Published after the bytes: the sender reads up to the head it loads.
    Atomics.store(this.ctrl, HEAD, head);
    return true;
  }

  /** Moves waiting messages into the ring as the sender frees room. */
  private waitForRoom(): void {
    if (this.waitingForRoom) return;
    this.waitingForRoom = true;
    const step = async () => {
      while (this.overflow.length > 0 && !this.exited) {
        const tail = Atomics.load(this.ctrl, TAIL);
        let moved = 0;
        while (moved < this.overflow.length && this.write(this.overflow[moved]![0], this.overflow[moved]![1])) moved++;
        if (moved > 0) {
          this.overflow = this.overflow.slice(moved);
          Atomics.notify(this.ctrl, HEAD);
        }
        if (this.overflow.length === 0) break;
        const w = waitAsync(this.ctrl, TAIL, tail, 100);
        if (w.async) await w.value;
      }
      if (this.exited && this.overflow.length > 0) {
        // The sender thread is gone: what it never got is dropped, and counted.
        this.dropped += this.overflow.length;
        this.written -= this.overflow.length;
        this.overflow = [];
      }
      this.waitingForRoom = false;
    };
    void step();
  }

  /** Resolves true once every message has been handed to ZeroMQ (false after `timeoutMs`). */
  async drain(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.length <= 0) return true;
      if (this.exited) return false;
      const left = until - Date.now();
      if (left <= 0) return false;
      const tail = Atomics.load(this.ctrl, TAIL);
      if (this.length <= 0) return true;
      const w = waitAsync(this.ctrl, TAIL, tail, Math.min(left, 50));
      if (w.async) await w.value;
    }
  }

  /** Refuses further messages, lets the sender finish what is queued, closes the socket. */
  async close(timeoutMs = 2000): Promise<void> {
    this.shut = true;
    if (this.exited) return;
    await this.drain(timeoutMs);
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.notify(this.ctrl, HEAD);
    const t = setTimeout(() => void this.worker.terminate(), timeoutMs);
    await this.exit;
    clearTimeout(t);
  }
}
