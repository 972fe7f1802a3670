import type { RpcResult } from '@polybot/protocol';
import type { RawFrame, RecordingRecord } from './pipeline/types.js';
import { RecordingReader } from './recording/index.js';

export type ReplayStatus = RpcResult<'replay.status'>;

export interface ReplayHooks {
  /** A raw frame, in recorded order, with the replay clock already at its receive time. */
  frame(frame: RawFrame): void;
  /** A recorded bus message the processors cannot rebuild (round announcements). */
  event(topic: string, payload: Uint8Array, ts: number): void;
  /** The replay clock moved (recorded time, ms). */
  clock(ts: number): void;
  /** The replay ended (done, stopped or failed). */
  finished(status: ReplayStatus): void;
}

/** Records between yields to the event loop at full speed: requests and status still get answered. */
const YIELD_EVERY = 2000;

/**
 * Plays a recording into the pipeline: raw frames go through the same processors as live ones,
 * at `speed` × recorded time or as fast as possible (speed 0). Nothing depends on the wall clock
 * but the pacing, so two replays of one recording publish the same messages.
 */
export class ReplayRun {
  private stopRequested = false;
  private state: ReplayStatus['state'] = 'running';
  private done = 0;
  private total = 0;
  private position = 0;
  private error: string | undefined;
  private startedAt = Date.now();
  private endedAt = 0;
  readonly finished: Promise<ReplayStatus>;

  private constructor(
    private readonly reader: RecordingReader,
    readonly recording: string,
    readonly speed: number,
    private readonly hooks: ReplayHooks,
    private readonly eventTopics: readonly string[],
  ) {
    this.total = reader.info().records;
    this.finished = this.run();
  }

  /** Opens the recording (a clear error if it is not one) and starts playing it. */
  static async start(dir: string, speed: number, hooks: ReplayHooks, eventTopics: readonly string[] = ['round.']): Promise<ReplayRun> {
    const reader = await RecordingReader.open(dir);
    return new ReplayRun(reader, dir, speed, hooks, eventTopics);
  }

  stop(): void {
    this.stopRequested = true;
  }

  status(): ReplayStatus {
    const end = this.endedAt || Date.now();
    const secs = Math.max(0.001, (end - this.startedAt) / 1000);
    return {
      state: this.state,
      recording: this.recording,
      speed: this.speed,
      records_done: this.done,
      records_total: Math.max(this.total, this.done),
      events_per_s: Math.round(this.done / secs),
      ...(this.position ? { position_ts: this.position } : {}),
      ...(this.error ? { error: this.error } : {}),
    };
  }

  private async run(): Promise<ReplayStatus> {
    // Let the caller answer its request before the first frame goes out.
    await new Promise((r) => setImmediate(r));
    let firstTs: number | undefined;
    const wallStart = Date.now();
    let sinceYield = 0;
    try {
      for await (const block of this.reader.blockRecords({ parsed: true })) {
        for (const rec of block) {
          if (this.stopRequested) break;
          const ts = rec.recvTs;
          firstTs ??= ts;
          if (this.speed > 0) {
            const due = wallStart + (ts - firstTs) / this.speed;
            const wait = due - Date.now();
            if (wait > 1) {
              await new Promise((r) => setTimeout(r, Math.min(wait, 1000)));
              // Re-check after long waits so a stop is honoured promptly.
              while (!this.stopRequested && due - Date.now() > 1) await new Promise((r) => setTimeout(r, Math.min(due - Date.now(), 1000)));
              sinceYield = 0;
            }
          }
          if (ts > this.position) {
            this.position = ts;
            this.hooks.clock(ts);
          }
          this.dispatch(rec);
          this.done++;
          if (++sinceYield >= YIELD_EVERY) {
            sinceYield = 0;
            await new Promise((r) => setImmediate(r));
          }
        }
        if (this.stopRequested) break;
      }
      this.state = this.stopRequested ? 'stopped' : 'done';
    } catch (err) {
      this.state = 'failed';
      this.error = (err as Error).message;
    }
    this.endedAt = Date.now();
    const st = this.status();
    this.hooks.finished(st);
    return st;
  }

  private dispatch(rec: RecordingRecord): void {
    if (rec.kind === 'raw') {
      // The record itself: copying `data` out would make a template frame's text for nothing.
      this.hooks.frame(rec);
      return;
    }
    for (const p of this.eventTopics) {
      if (rec.topic.startsWith(p)) {
        this.hooks.event(rec.topic, rec.payload, rec.recvTs);
        return;
      }
    }
  }
}
