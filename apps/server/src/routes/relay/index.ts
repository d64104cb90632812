/** Placeholder until its issue lands. */
import type { FastifyInstance } from 'fastify';

export async function relayRoutes(_app: FastifyInstance): Promise<void> {}
