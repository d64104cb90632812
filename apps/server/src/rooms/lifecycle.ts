/**
 * The lifecycle of a room held in memory (relay/room-registry.ts, sealed/registry.ts), as one
 * table: every state a room can be in, every event that moves it, and what a connection that
 * arrives meets in each state. Pure: the registries own the side effects of each transition.
 *
 *   loading ──loaded──▶ open ──emptied──▶ idle ──idle-timeout──▶ evicting ──unloaded──▶ closed
 *      │                  ▲                 │                      │
 *      │                  └─────joined──────┴──────joined──────────┘   (flush-failed: back to idle)
 *      └─load-failed──▶ closed                   deleted / evicted / shutdown: to closed from any
 *                                                 held state; a delete while loading reads again
 */

export type RoomState =
  /** being read from storage: nothing to serve yet; connections wait for the same read */
  | 'loading'
  /** in memory with connections (or about to be joined by those that waited for the load) */
  | 'open'
  /** in memory, no connections: the idle timer (ROOM_IDLE_MS) runs */
  | 'idle'
  /** leaving memory: what it accepted is being committed first; a connection arriving keeps it */
  | 'evicting'
  /** out of memory, for good: a later connection loads the room afresh */
  | 'closed';

export type RoomEvent =
  /** the read from storage finished */
  | 'loaded'
  /** the read from storage failed */
  | 'load-failed'
  /** a connection joined */
  | 'joined'
  /** the last connection left */
  | 'emptied'
  /** ROOM_IDLE_MS passed without a connection */
  | 'idle-timeout'
  /** committing before the unload failed (storage down): stay, try again later */
  | 'flush-failed'
  /** committed with no connection back: leave memory */
  | 'unloaded'
  /** admin delete: connections closed with 4410; a load in flight is thrown away and read again */
  | 'deleted'
  /** the document can no longer be trusted: dropped, connections reconnect and load afresh */
  | 'evicted'
  /** server shutdown */
  | 'shutdown';

const GONE = { deleted: 'closed', evicted: 'closed', shutdown: 'closed' } as const;

/** The allowed transitions: an event missing from a state's row is not allowed in that state. */
export const TRANSITIONS: Readonly<Record<RoomState, Readonly<Partial<Record<RoomEvent, RoomState>>>>> = {
  loading: { loaded: 'open', 'load-failed': 'closed', deleted: 'loading', shutdown: 'closed' },
  open: { joined: 'open', emptied: 'idle', ...GONE },
  idle: { joined: 'open', 'idle-timeout': 'evicting', ...GONE },
  evicting: { joined: 'open', 'flush-failed': 'idle', unloaded: 'closed', ...GONE },
  closed: {},
};

/** The state after `event`, or null when the event is not allowed in `state`. */
export function nextState(state: RoomState, event: RoomEvent): RoomState | null {
  return TRANSITIONS[state][event] ?? null;
}

export class IllegalTransition extends Error {
  constructor(
    readonly room: string,
    readonly state: RoomState,
    readonly event: RoomEvent,
  ) {
    super(`room ${room}: ${event} is not allowed while ${state}`);
    this.name = 'IllegalTransition';
  }
}

/** The state after `event`; throws IllegalTransition when the event is not allowed (a bug, never input). */
export function transition(room: string, state: RoomState, event: RoomEvent): RoomState {
  const next = nextState(state, event);
  if (next === null) throw new IllegalTransition(room, state, event);
  return next;
}

/**
 * What a connection arriving for a room meets: `join` the room in memory, `wait` for the read in
 * flight (every connection of that moment shares it), or `load` the room (nothing held, or what
 * was held is gone).
 */
export function onArrival(state: RoomState | undefined): 'join' | 'wait' | 'load' {
  switch (state) {
    case 'open':
    case 'idle':
    case 'evicting':
      return 'join';
    case 'loading':
      return 'wait';
    default:
      return 'load';
  }
}

/** Whether the room is in memory and may be served (its document, its connections). */
export function isHeld(state: RoomState): boolean {
  return state === 'open' || state === 'idle' || state === 'evicting';
}

/** What a registry keeps per room name: its state, and the room once loaded. */
export interface Held<R> {
  readonly name: string;
  state: RoomState;
  /** null while loading */
  room: R | null;
  /** runs while idle (ROOM_IDLE_MS) */
  idleTimer: NodeJS.Timeout | null;
}
