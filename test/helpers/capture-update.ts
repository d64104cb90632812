import type * as Y from 'yjs';

/** The one Yjs update `edit` makes on `doc` (throws if it makes none). */
export function captureUpdate(doc: Y.Doc, edit: () => void): Uint8Array {
  let update: Uint8Array | undefined;
  const capture = (u: Uint8Array): void => {
    update = u;
  };
  doc.on('update', capture);
  edit();
  doc.off('update', capture);
  if (!update) throw new Error('edit produced no update');
  return update;
}
