/**
 * y-webrtc's Room.disconnect() unsubscribes from lib0's BroadcastChannel for the room, then
 * announces its leaving on it asynchronously (after encrypting): lib0 opens the channel again
 * for that message and nothing ever closes it. In Node an open BroadcastChannel keeps the
 * process alive after destroy(). Subscribing and unsubscribing once more, after that message,
 * closes the channel, unless another provider of this process still uses the room.
 */
import * as bc from 'lib0/broadcastchannel';

/** after the plain message (microtasks) and after one encrypted with a room password */
const DELAYS_MS = [0, 1_000];

export function closeRoomChannelLater(room: string): void {
  for (const ms of DELAYS_MS) {
    const timer = setTimeout(() => {
      const nothing = (): void => undefined;
      bc.subscribe(room, nothing);
      bc.unsubscribe(room, nothing);
    }, ms) as unknown as { unref?: () => void };
    timer.unref?.();
  }
}
