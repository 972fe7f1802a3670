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
/**
 * A record is three Int32 words — topic id, payload length, topic length — then the topic's bytes
 * (only the first time an id is used: the sender keeps each topic's frame) and the payload's. A
 * topic id of WRAP means "continue at offset 0".
 */
const RECORD_HEADER = 12;
const WRAP = -1;
/** Most messages and bytes the sender takes per turn: zeromq.js's callbacks run between turns. */
const BATCH_MESSAGES = 4096;
const BATCH_BYTES = 1 << 20;
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
const topics = [];
let sent = 0;
let failed = 0;
// A send ZeroMQ refuses later rejects its promise; counting them here spares a handler per message.
process.on('unhandledRejection', () => { failed++; sent--; });
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
    while (tail !== head && n < ${BATCH_MESSAGES}) {
      if (ringI32[tail >> 2] === ${WRAP}) { tail = 0; continue; }
      // A run of records up to the head, a wrap or the batch's end, copied out in one go: the
      // ring's bytes are rewritten once the tail moves past them, and ZeroMQ keeps payloads over
      // 128 bytes by reference until they are on the wire.
      let end = tail;
      while (end !== head && n < ${BATCH_MESSAGES} && end - tail < ${BATCH_BYTES} && ringI32[end >> 2] !== ${WRAP}) {
        const w = end >> 2;
        end += ${RECORD_HEADER} + ((ringI32[w + 2] + 3) & ~3) + ((ringI32[w + 1] + 3) & ~3);
        n++;
        if (end >= cap) break;
      }
      const run = ring.slice(tail, end).buffer;
      for (let at = tail; at < end; ) {
        const w = at >> 2;
        const id = ringI32[w];
        const plen = ringI32[w + 1];
        const tlen = ringI32[w + 2];
        at += ${RECORD_HEADER};
        if (tlen > 0) {
          topics[id] = Buffer.from(ring.subarray(at, at + tlen));
          at += (tlen + 3) & ~3;
        }
        const payload = new Uint8Array(run, at - tail, plen);
        at += (plen + 3) & ~3;
        try {
          sock.send([topics[id], payload]);
          sent++;
        } catch {
          failed++;
        }
      }
      tail = end >= cap ? 0 : end;
    }
    Atomics.store(ctrl, ${TAIL}, tail);
    Atomics.store(ctrl, ${SENT}, sent);
    Atomics.store(ctrl, ${FAILED}, failed);
    Atomics.notify(ctrl, ${TAIL});
    if (n === ${BATCH_MESSAGES}) { await new Promise((r) => setImmediate(r)); continue; }
    if (Atomics.load(ctrl, ${STOP}) === 1 && Atomics.load(ctrl, ${HEAD}) === tail) break;
    const w = Atomics.waitAsync(ctrl, ${HEAD}, head);
    if (w.async) await w.value;
  }
  clearInterval(keepAlive);
  sock.close();
  parentPort.postMessage({ closed: true });
}
// A failure of the loop itself (not a send) ends the thread with an error the publisher reports.
run().catch((err) => process.nextTick(() => { throw err; }));
`;

/** Where a caller caches a topic's id (BusPublisher's PublishTopic). */
export interface TopicHandle {
  senderId: number;
  senderGen: number;
}

export interface ThreadSenderOptions {
  endpoint: string;
  mode: 'bind' | 'connect';
  sendHighWaterMark: number;
  /** Bytes of the shared ring (messages waiting for the sender thread). */
  ringBytes?: number;
  /** Topic ids in use at once (default 65,536); past this the table starts over. */
  topicIds?: number;
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
  private overflow: Array<[string, Uint8Array, Uint8Array]> = [];
  /** Topic ids the sender thread knows, by topic. */
  private readonly topicIds = new Map<string, number>();
  private nextTopicId = 0;
  /** Bumped when ids start over: ids cached in handles from before are stale. */
  private topicGen = 0;
  private readonly topicIdLimit: number;
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
    this.topicIdLimit = Math.max(1, opts.topicIds ?? 1 << 16);
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
   * Copies a message into the ring (or behind it when full); false once closing. `topic` is the
   * topic frame's text: the sender thread is given each topic's bytes once and keeps them.
   * `transient`: the payload is valid only during this call (a view of an encoder's buffer), so a
   * message that must wait gets a copy of its own.
   */
  enqueue(topic: string, frames: [Uint8Array, Uint8Array], transient = false, handle?: TopicHandle): boolean {
    if (this.shut) {
      this.dropped++;
      return false;
    }
    if (this.overflow.length > 0 || !this.write(topic, frames[0], frames[1], handle)) {
      // Topic frames are cached per topic and never change; slab payloads stay valid.
      this.overflow.push([topic, frames[0], transient ? frames[1].slice() : frames[1]]);
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
  private write(topic: string, topicFrame: Uint8Array, payload: Uint8Array, handle?: TopicHandle): boolean {
    let id = handle !== undefined && handle.senderGen === this.topicGen ? handle.senderId : this.topicIds.get(topic);
    const tlen = id === undefined ? topicFrame.length : 0;
    const need = RECORD_HEADER + align4(tlen) + align4(payload.length);
    if (need + RECORD_HEADER > this.cap) throw new RangeError(`a message of ${need} bytes does not fit the publisher's ring of ${this.cap}`);
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
    if (id === undefined) {
      // Ids are reused in ring order, so the sender has used an id's old topic for the last time
      // before it reads the record that gives it a new one.
      if (this.nextTopicId === this.topicIdLimit) {
        this.topicIds.clear();
        this.nextTopicId = 0;
        this.topicGen++;
      }
      id = this.nextTopicId++;
      this.topicIds.set(topic, id);
    }
    if (handle !== undefined) {
      handle.senderId = id;
      handle.senderGen = this.topicGen;
    }
    const w = head >> 2;
    this.ringI32[w] = id;
    this.ringI32[w + 1] = payload.length;
    this.ringI32[w + 2] = tlen;
    if (tlen > 0) this.ring.set(topicFrame, head + RECORD_HEADER);
    this.ring.set(payload, head + RECORD_HEADER + align4(tlen));
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
        while (moved < this.overflow.length && this.write(...this.overflow[moved]!)) moved++;
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
