/** Admin API refusals in the shape of docs/errors.md. */
import type { FastifyReply } from 'fastify';
import { Errors } from '@sync-suite/shared';

export function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ error: Errors.ERR_BAD_REQUEST.code, message });
}
