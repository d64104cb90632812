/**
 * The error message of a relay path (plain or sealed) the server closed with 4410 (admin
 * DELETE): the provider stops using that path for good (reconnecting would upload the deleted
 * document again) and keeps its local copy; dropping it is the app's decision. A sealed room's
 * device also gets it at hello when its stored generation is no longer the room's
 * (docs/PROTOCOL-sealed.md, "Generation").
 */
export const ROOM_DELETED_MESSAGE =
  'room deleted on the server (4410): the relay path stays closed for this provider; the local copy is kept (destroy the provider and clear its persistence to drop it; a new provider without that persistence would upload it again, and in a sealed room one with it gets 4410 again)';
