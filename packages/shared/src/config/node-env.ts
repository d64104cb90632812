/**
 * Whether NODE_ENV names production. Compared without case and surrounding space: a
 * `NODE_ENV=Production` must not start the server with auth off (server-config.ts), and
 * scripts/start.ts must not treat it as a development run.
 */
export function isProduction(nodeEnv: string | undefined): boolean {
  return nodeEnv?.trim().toLowerCase() === 'production';
}
