export {
  FORMAT_VERSION,
  decodeBlock,
  encodeBlockSync,
  jsonLinesSize,
  splitFrame,
  toJsonLine,
  type CompressionOptions,
} from './format.js';
export {
  INDEX_FILE,
  RecordingReader,
  isRecordingDir,
  loadSegments,
  scanSegment,
  type ReadOptions,
  type RecordingIndex,
  type RecordingInfo,
  type SegmentInfo,
} from './reader.js';
export { RecordingWriter, writeRecording, type WriterOptions, type WriterStats } from './writer.js';
export { applyRetention, type DeletedSegment, type RetentionOptions, type RetentionResult } from './retention.js';
export {
  generateFrames,
  syntheticBusEvents,
  syntheticFrames,
  syntheticGammaFrame,
  syntheticMarkets,
  syntheticRecording,
  type BusEventOptions,
  type SyntheticMarket,
  type SyntheticOptions,
} from './synthetic.js';
