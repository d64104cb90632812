/**
 * Stands a test at the moment of a race: the first call of a real method (a storage read or
 * write) runs and gets its answer, which is then held until release(); later calls pass through.
 * The engine stays real; only the timing of one answer is chosen by the test.
 */
export interface HeldCall {
  /** resolves when the first call has been answered by the engine (and is held) */
  entered: Promise<void>;
  release(): void;
  /** calls so far */
  calls: number;
}

/** `onClose` is given a release, so a test that fails midway never leaves a shutdown waiting. */
export function holdFirstCall<K extends string>(
  obj: Record<K, (...args: never[]) => Promise<unknown>>,
  key: K,
  onClose: (closer: { close(): Promise<void> }) => void,
): HeldCall {
  const real = obj[key].bind(obj);
  let enter!: () => void;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const held: HeldCall = { entered: new Promise<void>((r) => (enter = r)), release, calls: 0 };
  obj[key] = (async (...args: never[]) => {
    const first = held.calls++ === 0;
    const result = await real(...args);
    if (first) {
      enter();
      await released;
    }
    return result;
  }) as (typeof obj)[K];
  onClose({ close: async () => release() });
  return held;
}
