/**
 * The scanner's pipeline: adapters connect to sources and hand over raw frames tagged with where and
 * when they arrived; processors turn frames into normalized events; books and publishers act on those.
 * A recording stores the raw frames (and what was published), so a replay feeds the same processors.
 */

/** Where a raw frame came from. */
export type FrameSource =
  /** A market-channel WebSocket frame (`conn` = shard number). */
  | 'market'
  /** A REST `/book` answer used as a snapshot (`conn` = 0). */
  | 'rest_book'
  /** A Gamma discovery answer: the JSON array of markets the scanner follows (`conn` = 0). */
  | 'gamma'
  /** An RTDS reference-price frame. */
  | 'rtds'
  /** A round watcher's Gamma lookup of one round market. */
  | 'round'
  /** Markets followed besides discovery's (the rounds'), as a full list in the `gamma` frame's form. */
  | 'pins'
  /** A market-channel connection closed: `{"state":"closed","assets":[…]}` (its books are void). */
  | 'market_status'
  /**
   * The scanner's own books when a recording starts mid-stream (not a venue frame): what the venue's
   * earlier frames had built, so a replay starts from the same state.
   */
  | 'checkpoint';

export interface RawFrame {
  source: FrameSource;
  /** Connection within the source, e.g. the market-channel shard. */
  conn: number;
  /** Our receive time, ms since the epoch. */
  recvTs: number;
  /** The frame exactly as received. */
  data: string;
  /**
   * The frame's JSON value when a replay built it without the text (what JSON.parse(data) gives);
   * processors then skip the parse.
   */
  parsed?: unknown;
}

/** One record of a recording, in order of arrival. */
export type RecordingRecord =
  | ({ kind: 'raw' } & RawFrame)
  /** A bus message as published: its topic and msgpack payload (envelope included); `recvTs` = publish time. */
  | { kind: 'event'; recvTs: number; topic: string; payload: Uint8Array };

/** Receives raw frames from an adapter. */
export type FrameSink = (frame: RawFrame) => void;

/** A source of raw frames, registered by name. */
export interface Adapter {
  readonly name: string;
  start(): void | Promise<void>;
  stop(): Promise<void>;
  /** Counters for status messages and `/metrics`. */
  stats(): Record<string, number | string>;
}
