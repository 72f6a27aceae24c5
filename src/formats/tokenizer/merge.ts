// Score-greedy pair merging shared by the SentencePiece-BPE tokenizers (llama2.c run.c `encode`,
// GGUF "llama" vocabularies): repeatedly replace the adjacent pair whose concatenation is a
// vocabulary piece with the highest score; among equal scores the leftmost pair wins (run.c scans
// left to right and keeps a strictly greater score).
//
// `mergeByScoreReference` is that loop as written (O(n²) per text); `mergeByScore` gives the same
// result with a heap of candidate pairs over a linked list, O(n log n). A test compares them.
// Pieces are keyed as "binary strings" (one char per byte) so concatenation is byte concatenation.

export interface MergeVocab {
  /** piece key per id (binary string) */
  keys: readonly string[];
  /** piece key → id */
  lookup: ReadonlyMap<string, number>;
  scores: ArrayLike<number>;
}

/** run.c's loop, unchanged in behaviour: the slow reference. */
export function mergeByScoreReference(ids: number[], v: MergeVocab): number[] {
  const t = [...ids];
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < t.length - 1; i++) {
      const id = v.lookup.get(v.keys[t[i]] + v.keys[t[i + 1]]);
      if (id !== undefined && v.scores[id] > bestScore) {
        bestScore = v.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    t[bestIdx] = bestId;
    t.splice(bestIdx + 1, 1);
  }
  return t;
}

/** Same result as mergeByScoreReference, in O(n log n). */
export function mergeByScore(ids: number[], v: MergeVocab): number[] {
  const n = ids.length;
  if (n < 2) return [...ids];
  const tok = Int32Array.from(ids);
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new PairHeap();
  // run.c starts from best_score = -1e10 and needs a strictly greater score
  const push = (l: number) => {
    const r = next[l];
    if (l < 0 || r < 0) return;
    const id = v.lookup.get(v.keys[tok[l]] + v.keys[tok[r]]);
    if (id !== undefined && v.scores[id] > -1e10) heap.push(v.scores[id], l, r, id, tok[l], tok[r]);
  };
  for (let i = 0; i < n - 1; i++) push(i);
  const alive = new Uint8Array(n).fill(1);
  while (heap.size > 0) {
    const e = heap.pop();
    // a stale candidate: one side was merged away or changed since it was pushed
    if (!alive[e.l] || !alive[e.r] || next[e.l] !== e.r || tok[e.l] !== e.lt || tok[e.r] !== e.rt) continue;
    tok[e.l] = e.id;
    alive[e.r] = 0;
    next[e.l] = next[e.r];
    if (next[e.r] >= 0) prev[next[e.r]] = e.l;
    if (prev[e.l] >= 0) push(prev[e.l]);
    push(e.l);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(tok[i]);
  return out;
}

interface Cand {
  score: number;
  l: number;
  r: number;
  id: number;
  lt: number;
  rt: number;
}

/** Max-heap on score, then min on left position (the leftmost of equal scores first). */
class PairHeap {
  private a: Cand[] = [];
  get size(): number {
    return this.a.length;
  }
  private before(x: Cand, y: Cand): boolean {
    return x.score > y.score || (x.score === y.score && x.l < y.l);
  }
  push(score: number, l: number, r: number, id: number, lt: number, rt: number): void {
    const a = this.a;
    a.push({ score, l, r, id, lt, rt });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): Cand {
    const a = this.a;
    const top = a[0];
    const last = a.pop() as Cand;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l], a[m])) m = l;
        if (r < a.length && this.before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Bytes → binary string (one char per byte). */
export function bytesToBinary(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** Binary string → bytes. */
export function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}
