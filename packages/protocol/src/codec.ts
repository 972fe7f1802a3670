import { Decoder, Encoder } from '@msgpack/msgpack';
import Compile, { type Validator } from 'typebox/compile';
import {
  FillEvent,
  OrderEvent,
  PositionEvent,
  PROTOCOL_VERSION,
  SCHEMAS,
  SignalEvent,
  type BusMessage,
} from './messages.js';
import { BAIL, FlatDecoder } from './fast-decode.js';
import { FlatEncoder, type MapWriter } from './fast-msgpack.js';
import { MAX_TOPIC_BYTES, TOPIC_ROOT } from './topics.js';

export type DecodeErrorCode =
  | 'frame_count'
  | 'topic_invalid'
  | 'too_large'
  | 'msgpack'
  | 'not_map'
  | 'forbidden_key'
  | 'unknown_type'
  | 'version'
  | 'schema'
  | 'topic_mismatch';

export type DecodeResult =
  | { ok: true; topic: string; msg: BusMessage }
  | { ok: false; code: DecodeErrorCode; reason: string; topic?: string };

export interface CodecLimits {
  /** Largest payload frame accepted, in bytes. */
  maxPayloadBytes: number;
  maxStrLength: number;
  maxBinLength: number;
  maxArrayLength: number;
  maxMapLength: number;
}

export const DEFAULT_LIMITS: CodecLimits = {
  maxPayloadBytes: 1 << 20,
  maxStrLength: 64 * 1024,
  maxBinLength: 256 * 1024,
  maxArrayLength: 10_000,
  maxMapLength: 512,
};

type AnyValidator = Validator;
const validators = new Map<string, AnyValidator>();
for (const [type, schema] of Object.entries(SCHEMAS)) {
  if (type !== 'event') validators.set(type, Compile(schema) as AnyValidator);
}
const eventValidators = new Map<string, AnyValidator>([
  ['order', Compile(OrderEvent) as AnyValidator],
  ['fill', Compile(FillEvent) as AnyValidator],
  ['position', Compile(PositionEvent) as AnyValidator],
  ['signal', Compile(SignalEvent) as AnyValidator],
]);

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function hasForbiddenKey(value: unknown, depth = 0): boolean {
  if (depth > 32 || value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some((v) => hasForbiddenKey(v, depth + 1));
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) return true;
    if (hasForbiddenKey((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

function validatorFor(msg: Record<string, unknown>): AnyValidator | undefined {
  if (msg.type === 'event') return eventValidators.get(String(msg.kind));
  return validators.get(String(msg.type));
}

function firstError(v: AnyValidator, msg: unknown): string {
  const err = v.Errors(msg)[0];
  if (!err) return 'invalid message';
  return `${err.instancePath || '/'} ${err.message}`;
}

/**
 * Encodes and decodes bus frames. One instance per socket: the msgpack encoder and decoder
 * keep internal buffers, which makes reuse fast but not re-entrant.
 */
export class Codec {
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly flat = new FlatEncoder();
  private readonly topicCache = new Map<string, Buffer>();
  private readonly decoder: Decoder;
  private readonly flatDecoder: FlatDecoder;
  readonly limits: CodecLimits;

  constructor(limits: Partial<CodecLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.decoder = new Decoder({
      maxStrLength: this.limits.maxStrLength,
      maxBinLength: this.limits.maxBinLength,
      maxArrayLength: this.limits.maxArrayLength,
      maxMapLength: this.limits.maxMapLength,
      maxExtLength: 0,
    });
    this.flatDecoder = new FlatDecoder(this.limits, FORBIDDEN_KEYS);
  }

  /** Checks a message against its schema; returns the first problem or null. */
  check(msg: BusMessage): string | null {
    const v = validatorFor(msg as Record<string, unknown>);
    if (!v) return `unknown message type ${String((msg as { type?: unknown }).type)}`;
    return v.Check(msg) ? null : firstError(v, msg);
  }

  encodePayload(msg: BusMessage): Uint8Array {
    const fast = this.flat.encode(msg as unknown as Record<string, unknown>);
    if (fast) return fast;
    // Copy: the encoder reuses its buffer for the next call.
    return this.encoder.encode(msg).slice();
  }

  encode(topic: string, msg: BusMessage): [Buffer, Uint8Array] {
    return [this.topicFrame(topic), this.encodePayload(msg)];
  }

  /** `encode` of `msg` plus envelope fields, without building the merged object first. */
  encodeWith(topic: string, msg: Record<string, unknown>, envelope: Record<string, unknown>): [Buffer, Uint8Array] {
    const fast = this.flat.encode(msg, envelope);
    return [this.topicFrame(topic), fast ?? this.encoder.encode({ ...msg, ...envelope }).slice()];
  }

  /**
   * `encodeWith` for a message its publisher writes entry by entry (`write` adds the message's
   * entries, then the envelope's follow, given as an object or written too): no object is built
   * for it, and the bytes equal `encodeWith`'s for the same fields in the same order.
   */
  encodeWritten(
    topic: string,
    write: (w: MapWriter) => void,
    envelope: Record<string, unknown> | ((w: MapWriter) => void),
    /** The payload as a view of the encoder's buffer, valid until the next encode (see FlatEncoder.end). */
    transient = false,
  ): [Buffer, Uint8Array] {
    return [this.topicFrame(topic), this.writePayload(write, envelope, transient)];
  }

  /** `encodeWritten`'s payload alone, for a caller that holds the topic's frame. */
  writePayload(write: (w: MapWriter) => void, envelope: Record<string, unknown> | ((w: MapWriter) => void), transient = false): Uint8Array {
    const w = this.flat.begin();
    write(w);
    let payload: Uint8Array | undefined;
    if (typeof envelope === 'function') {
      envelope(w);
      payload = w.end(undefined, transient);
    } else payload = w.end(envelope, transient);
    if (!payload) throw new TypeError('envelope holds a value msgpack maps on the bus cannot carry');
    return payload;
  }

  /** Topic frames repeat (one per token): reuse their bytes. ZeroMQ copies them on send. */
  private topicFrame(topic: string): Buffer {
    let b = this.topicCache.get(topic);
    if (!b) {
      b = Buffer.from(topic, 'utf8');
      if (this.topicCache.size >= 20_000) this.topicCache.clear();
      this.topicCache.set(topic, b);
    }
    return b;
  }

  /** Decodes a payload frame into a validated message (topic checks are the caller's). */
  decodePayload(payload: Uint8Array, topic?: string): DecodeResult {
    if (payload.byteLength > this.limits.maxPayloadBytes) {
      return { ok: false, code: 'too_large', reason: `payload of ${payload.byteLength} bytes exceeds ${this.limits.maxPayloadBytes}`, topic };
    }
    let value: unknown;
    let forbidden: boolean | undefined;
    try {
      value = this.flatDecoder.decode(payload);
      // Whatever the fast reader is unsure of, the general decoder decides.
      if (value === BAIL) value = this.decoder.decode(payload);
      else forbidden = this.flatDecoder.flagged;
    } catch (err) {
      return { ok: false, code: 'msgpack', reason: (err as Error).message.slice(0, 200), topic };
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
      return { ok: false, code: 'not_map', reason: 'payload is not a msgpack map', topic };
    }
    if (forbidden ?? hasForbiddenKey(value)) {
      return { ok: false, code: 'forbidden_key', reason: 'payload contains a prototype key', topic };
    }
    const msg = value as Record<string, unknown>;
    const v = validatorFor(msg);
    if (!v) return { ok: false, code: 'unknown_type', reason: `unknown message type ${JSON.stringify(msg.type)?.slice(0, 64)}`, topic };
    if (typeof msg.v === 'number' && msg.v > PROTOCOL_VERSION) {
      return { ok: false, code: 'version', reason: `message version ${msg.v} is newer than ${PROTOCOL_VERSION}`, topic };
    }
    if (!v.Check(msg)) return { ok: false, code: 'schema', reason: firstError(v, msg), topic };
    return { ok: true, topic: topic ?? '', msg: msg as unknown as BusMessage };
  }

  /** Decodes a two-frame bus message `[topic, payload]` and checks the topic fits the type. */
  decode(frames: readonly Uint8Array[]): DecodeResult {
    if (frames.length !== 2) return { ok: false, code: 'frame_count', reason: `expected 2 frames, got ${frames.length}` };
    const [topicFrame, payload] = frames as [Uint8Array, Uint8Array];
    if (topicFrame.byteLength === 0 || topicFrame.byteLength > MAX_TOPIC_BYTES) {
      return { ok: false, code: 'topic_invalid', reason: `topic length ${topicFrame.byteLength} outside 1..${MAX_TOPIC_BYTES}` };
    }
    // zeromq.js hands over Buffers already; other callers may pass plain bytes.
    const topic = (Buffer.isBuffer(topicFrame) ? topicFrame : Buffer.from(topicFrame.buffer, topicFrame.byteOffset, topicFrame.byteLength)).toString('utf8');
    const res = this.decodePayload(payload, topic);
    if (!res.ok) return res;
    const root = TOPIC_ROOT[res.msg.type];
    if (root !== undefined) {
      // The topic's first segment (up to the first '.') must be the root; roots hold no '.'.
      const n = root.length;
      if (!topic.startsWith(root) || (topic.length > n && topic.charCodeAt(n) !== 46)) {
        return { ok: false, code: 'topic_mismatch', reason: `${res.msg.type} message on topic ${topic.slice(0, 64)}`, topic };
      }
    }
    return res;
  }
}
