export * from './messages.js';
export * from './topics.js';
export * from './codec.js';
export * from './decimal.js';
export * from './ids.js';
export * from './rpc.js';
export { FlatEncoder, type EncodedEntries, type MapWriter } from './fast-msgpack.js';
