/**
 * A received frame as one Buffer, whatever form ws handed it in (a Buffer with the default
 * binaryType; fragments or an ArrayBuffer otherwise). Buffers pass through without a copy.
 */
import type { RawData } from 'ws';

export function rawDataToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
