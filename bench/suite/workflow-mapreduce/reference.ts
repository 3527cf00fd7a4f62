// A SeBS-Flow-style MapReduce in JavaScript: word count over generated text. The map step
// counts the words (runs of non-spaces) of a piece and answers the framed list word, count
// (u32), …; the main thread adds the counts up and answers them sorted by word, as the
// skeleton's merge does.
import { frame, unframe } from 'nuvola/skeletons';

export function countPiece(piece: Uint8Array): Map<string, number> {
  const counts = new Map<string, number>();
  const words = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).toString('latin1').split(' ');
  for (const w of words) if (w.length > 0) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

export function reference(input: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [w, n] of countPiece(input)) parts.push(Buffer.from(w, 'latin1'), new Uint8Array(new Uint32Array([n]).buffer));
  return frame(parts);
}

/** The counts of several mappers' answers, added up and framed sorted by word. */
export function merge(outputs: readonly Uint8Array[]): Uint8Array {
  const totals = new Map<string, number>();
  for (const out of outputs) {
    const kv = unframe(out);
    for (let i = 0; i < kv.length; i += 2) {
      const v = kv[i + 1]!;
      const w = Buffer.from(kv[i]!).toString('latin1');
      totals.set(w, (totals.get(w) ?? 0) + new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true));
    }
  }
  const words = [...totals.keys()].map((w) => Buffer.from(w, 'latin1')).sort(Buffer.compare);
  return frame(words.flatMap((w) => [w, new Uint8Array(new Uint32Array([totals.get(w.toString('latin1'))!]).buffer)]));
}
