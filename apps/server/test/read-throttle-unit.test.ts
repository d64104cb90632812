/**
 * ReadThrottle's two reasons to keep reading paused (ws/read-throttle.ts), over a fake socket
 * that counts pause and resume, on fake timers: the rate wait and a hold each resume reading
 * only when the other does not want it paused.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket } from 'ws';
import { ReadThrottle } from '../src/ws/read-throttle.js';

/**
 * The part of a ws socket ReadThrottle uses: readyState, pause/resume (counted). It listens to
 * nothing: its owner's one 'close' listener stops it (ws/shared-listeners.ts), so `on` throws.
 */
function fakeSocket() {
  const socket = {
    OPEN: 1,
    readyState: 1,
    isPaused: false,
    pauses: 0,
    resumes: 0,
    pause() {
      socket.pauses++;
      socket.isPaused = true;
    },
    resume() {
      socket.resumes++;
      socket.isPaused = false;
    },
    on(event: string): never {
      throw new Error(`ReadThrottle listened to '${event}'`);
    },
  };
  return socket;
}

/** A throttle whose rate wait is `wait.ms` (the test pays the debt by setting it to 0). */
function throttleOver(socket: ReturnType<typeof fakeSocket>) {
  const wait = { ms: 0 };
  let alive = 0;
  const throttle = new ReadThrottle(socket as unknown as WebSocket, () => wait.ms, () => alive++);
  return { throttle, wait, alive: () => alive };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ReadThrottle', () => {
  it('the rate wait alone pauses reading and resumes it once the debt is paid', () => {
    const socket = fakeSocket();
    const { throttle, wait, alive } = throttleOver(socket);
    wait.ms = 1500;
    expect(throttle.pause()).toBe(true);
    expect(throttle.pause()).toBe(false); // already paused for the rate
    vi.advanceTimersByTime(1000);
    expect(alive()).toBe(1); // a sign of life every second while paused
    wait.ms = 0;
    vi.advanceTimersByTime(1000);
    expect([socket.pauses, socket.resumes, socket.isPaused, throttle.paused]).toEqual([1, 1, false, false]);
  });

  it('the rate timer does not resume a held socket; the release does', () => {
    const socket = fakeSocket();
    const { throttle, wait } = throttleOver(socket);
    wait.ms = 200;
    throttle.pause();
    throttle.hold(); // e.g. a frame arrived before the connection is open
    wait.ms = 0;
    vi.advanceTimersByTime(5000); // the rate wait is over long since
    expect(throttle.paused).toBe(false);
    expect(socket.resumes).toBe(0);
    expect(socket.isPaused).toBe(true);
    throttle.release();
    expect([socket.resumes, socket.isPaused, throttle.holding]).toEqual([1, false, false]);
    throttle.release(); // no hold: nothing to do
    expect(socket.resumes).toBe(1);
  });

  it('a release does not resume a socket still over its rate; the rate timer does once the debt is paid', () => {
    const socket = fakeSocket();
    const { throttle, wait } = throttleOver(socket);
    throttle.hold();
    wait.ms = 300;
    expect(throttle.pause()).toBe(true);
    throttle.release();
    expect(socket.resumes).toBe(0);
    wait.ms = 0;
    vi.advanceTimersByTime(300);
    expect([socket.resumes, socket.isPaused]).toEqual([1, false]);
  });

  it('nothing resumes a socket that closed while paused', () => {
    const socket = fakeSocket();
    const { throttle, wait } = throttleOver(socket);
    wait.ms = 300;
    throttle.pause();
    socket.readyState = 3;
    throttle.stop(); // the owner's close listener
    vi.advanceTimersByTime(5000);
    expect([socket.resumes, throttle.paused]).toEqual([0, false]);
  });
});
