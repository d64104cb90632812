/** Placeholder until its issue lands. */
import type { FastifyInstance } from 'fastify';

export async function signalingRoutes(_app: FastifyInstance): Promise<void> {}
