export { buildServer, type BuildOptions } from './app.js';
export type { ServerContext } from './context.js';
