export * from './sdk.js';
export * from './runner.js';
export * from './registry.js';
export { threshold, ThresholdConfig, createThreshold } from './threshold/index.js';
