/** The room lifecycle table (rooms/lifecycle.ts), pure: which events each state allows, and where they lead. */
import { describe, expect, it } from 'vitest';
import { IllegalTransition, TRANSITIONS, isHeld, nextState, onArrival, transition, type RoomEvent, type RoomState } from '../src/rooms/lifecycle.js';

const STATES = Object.keys(TRANSITIONS) as RoomState[];
const EVENTS: RoomEvent[] = ['loaded', 'load-failed', 'joined', 'emptied', 'idle-timeout', 'flush-failed', 'unloaded', 'deleted', 'evicted', 'shutdown'];
const HELD: RoomState[] = ['open', 'idle', 'evicting'];

function reachable(from: RoomState): Set<RoomState> {
  const seen = new Set<RoomState>([from]);
  const todo = [from];
  for (let s = todo.pop(); s !== undefined; s = todo.pop()) {
    for (const next of Object.values(TRANSITIONS[s])) if (!seen.has(next)) (seen.add(next), todo.push(next));
  }
  return seen;
}

describe('room lifecycle', () => {
  it('a room is served (joined) only while in memory; connections wait while it loads, and load it afresh once closed', () => {
    expect(STATES.map((s) => [s, onArrival(s)])).toEqual([
      ['loading', 'wait'],
      ['open', 'join'],
      ['idle', 'join'],
      ['evicting', 'join'],
      ['closed', 'load'],
    ]);
    expect(onArrival(undefined)).toBe('load');
    for (const s of STATES) expect(nextState(s, 'joined') !== null).toBe(onArrival(s) === 'join');
    for (const s of HELD) expect(nextState(s, 'joined')).toBe('open');
    expect(STATES.filter(isHeld)).toEqual(HELD);
  });

  it('a delete while loading keeps it loading (the read is thrown away and done again); anywhere else it closes the room', () => {
    expect(nextState('loading', 'deleted')).toBe('loading');
    for (const s of HELD) for (const e of ['deleted', 'evicted', 'shutdown'] as const) expect(nextState(s, e)).toBe('closed');
    expect(nextState('loading', 'shutdown')).toBe('closed');
    expect(nextState('loading', 'evicted')).toBeNull(); // nothing in memory to distrust yet
  });

  it('only an idle room times out, only an evicting one unloads; a failed commit sends it back to idle', () => {
    expect(STATES.filter((s) => nextState(s, 'idle-timeout') !== null)).toEqual(['idle']);
    expect(STATES.filter((s) => nextState(s, 'unloaded') !== null)).toEqual(['evicting']);
    expect(nextState('idle', 'idle-timeout')).toBe('evicting');
    expect(nextState('evicting', 'unloaded')).toBe('closed');
    expect(nextState('evicting', 'flush-failed')).toBe('idle');
    expect(STATES.filter((s) => nextState(s, 'emptied') !== null)).toEqual(['open']);
    expect(nextState('open', 'emptied')).toBe('idle');
  });

  it('a load ends open or closed; closed is final and reached from every state', () => {
    expect(nextState('loading', 'loaded')).toBe('open');
    expect(nextState('loading', 'load-failed')).toBe('closed');
    expect(STATES.filter((s) => nextState(s, 'loaded') !== null)).toEqual(['loading']);
    for (const e of EVENTS) expect(nextState('closed', e)).toBeNull();
    for (const s of STATES) expect(reachable(s).has('closed')).toBe(true);
    expect([...reachable('loading')].sort()).toEqual([...STATES].sort());
  });

  it('transition() throws IllegalTransition for an event the state does not allow', () => {
    expect(transition('r', 'idle', 'joined')).toBe('open');
    expect(() => transition('acme-r', 'open', 'unloaded')).toThrow(IllegalTransition);
    expect(() => transition('acme-r', 'closed', 'joined')).toThrow('room acme-r: joined is not allowed while closed');
  });
});
