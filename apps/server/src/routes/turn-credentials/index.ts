/** Placeholder until its issue lands. */
import type { FastifyInstance } from 'fastify';

export async function turnCredentialsRoutes(_app: FastifyInstance): Promise<void> {}
