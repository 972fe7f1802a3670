export * from './config.js';
export * from './errors.js';
export * from './lifecycle.js';
export * from './logger.js';
export * from './main-helpers.js';
export * from './paths.js';
export * from './sqlite.js';
