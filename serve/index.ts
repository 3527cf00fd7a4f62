/**
 * `nuvola/serve`: the HTTP server, its triggers and the traced invoke, for services that embed
 * a runtime and want to serve it (`nuvola serve` is this with a runtime of its own).
 */
export { serve, type NuvolaServer } from './server.js';
export type { ServeOptions } from './options.js';
export type { StreamTrigger } from './streams.js';
export type { CronTrigger } from './cron.js';
export type { StatusDocument } from './status-page.js';
export { FunctionTable } from './function-table.js';
export { invokeTraced, contextFromHeaders } from './tracing.js';
export { loadFunctions } from './load.js';
