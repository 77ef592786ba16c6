// A compact picture of a set's elements, for comparing one dump with the next without an object per
// element. Records (seen-generation, deadline, timeout, key words, data words) sit in one
// Float64Array in the order the kernel dumped them, with an open-addressing hash index (linear
// probing, at most half full) from key to record. The kernel dumps a set in the same order every
// time while it does not change much, so a poll can check each element against the record at the
// expected position — a sequential walk — and use the index only where the order differs: random
// accesses into a table of 100,000 elements cost ~200 ns each here, four times the rest of the work.
// Pure data structure.

/** Four bytes at `o` as a u32 (big-endian; only equality and hashing matter). */
function word(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

// Record layout: [SEEN, DEADLINE, TIMEOUT, key words..., data words...]. SEEN is 0 for a removed
// record, FRESH for an element no generation has seen yet, else the generation that last saw it.
const SEEN = 0;
const DEADLINE = 1;
const TIMEOUT = 2;
const KEY = 3;
const FRESH = -1;
/** How many removed records findNear steps over before giving up on the expected position. */
const SKIP_DEAD = 4;

export class ElemTable {
  /** Number of live elements. */
  size = 0;
  /** Records in use (live or removed): valid record numbers are 0 .. records - 1. */
  records = 0;
  private readonly stride: number;
  private rec: Float64Array;
  /** Hash slot -> record number + 1 (0 = empty). */
  private index: Int32Array;
  private mask: number;
  /** The key being looked up or inserted, as words. */
  private readonly probe = new Float64Array(4);

  constructor(
    /** u32 words per key: 1 for IPv4, 4 for IPv6. */
    readonly keyWords: number,
    /** u32 words of map data: 0 for a plain set. */
    readonly dataWords: number,
    capacity = 1024,
  ) {
    this.stride = KEY + keyWords + dataWords;
    this.rec = new Float64Array(Math.max(16, capacity) * this.stride);
    let slots = 32;
    while (slots < capacity * 2) slots *= 2;
    this.index = new Int32Array(slots);
    this.mask = slots - 1;
  }

  isLive(r: number): boolean {
    return this.rec[r * this.stride + SEEN] !== 0;
  }

  /** The generation that last saw the element (see setSeen); 0 when none did yet. */
  seen(r: number): number {
    const v = this.rec[r * this.stride + SEEN]!;
    return v === FRESH ? 0 : v;
  }
  /** Marks the element as seen by generation `gen` (>= 1). */
  setSeen(r: number, gen: number): void {
    this.rec[r * this.stride + SEEN] = gen;
  }
  /** Epoch ms when the element expires; NaN when it does not. */
  deadline(r: number): number {
    return this.rec[r * this.stride + DEADLINE]!;
  }
  setDeadline(r: number, ms: number): void {
    this.rec[r * this.stride + DEADLINE] = ms;
  }
  /** The element's own timeout in ms (0 = none). */
  timeout(r: number): number {
    return this.rec[r * this.stride + TIMEOUT]!;
  }
  setTimeout(r: number, ms: number): void {
    this.rec[r * this.stride + TIMEOUT] = ms;
  }

  private load(b: Uint8Array, o: number): void {
    for (let i = 0; i < this.keyWords; i++) this.probe[i] = word(b, o + i * 4);
  }

  /** Index slot where the key whose words start at `words[at]` belongs. */
  private home(words: Float64Array, at: number): number {
    let h = 0x9e3779b9;
    for (let i = 0; i < this.keyWords; i++) {
      h = Math.imul(h ^ words[at + i]!, 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.mask;
  }

  private keyIsProbe(r: number): boolean {
    const k = r * this.stride + KEY;
    for (let i = 0; i < this.keyWords; i++) if (this.rec[k + i] !== this.probe[i]) return false;
    return true;
  }

  /** The record of the key whose bytes start at `b[o]`, or -1. */
  find(b: Uint8Array, o: number): number {
    this.load(b, o);
    return this.findProbe();
  }

  private findProbe(): number {
    for (let s = this.home(this.probe, 0); ; s = (s + 1) & this.mask) {
      const r = this.index[s]! - 1;
      if (r < 0) return -1;
      if (this.keyIsProbe(r)) return r;
    }
  }

  /**
   * As find, trying record `hint` first (and the few after it that were removed): the cheap path
   * when elements come in the order of the records.
   */
  findNear(b: Uint8Array, o: number, hint: number): number {
    this.load(b, o);
    const st = this.stride;
    for (let r = hint, n = 0; r < this.records && n <= SKIP_DEAD; r++, n++) {
      if (this.rec[r * st + SEEN] === 0) continue;
      if (this.keyIsProbe(r)) return r;
      break;
    }
    return this.findProbe();
  }

  /** Adds a key known to be absent as a new last record; returns its number. */
  insert(b: Uint8Array, o: number): number {
    this.load(b, o);
    return this.append(this.probe, 0);
  }

  /** Appends a record with the key `words[at ..]`, indexes it, returns its number. */
  private append(words: Float64Array, at: number): number {
    const st = this.stride;
    if ((this.records + 1) * st > this.rec.length) {
      const bigger = new Float64Array(this.rec.length * 2);
      bigger.set(this.rec.subarray(0, this.records * st));
      this.rec = bigger;
    }
    if ((this.size + 1) * 2 > this.index.length) this.reindex(this.index.length * 2);
    const r = this.records++;
    const base = r * st;
    this.rec[base + SEEN] = FRESH;
    this.rec[base + DEADLINE] = NaN;
    this.rec[base + TIMEOUT] = 0;
    for (let i = 0; i < this.keyWords; i++) this.rec[base + KEY + i] = words[at + i]!;
    this.indexRecord(r);
    this.size++;
    return r;
  }

  private indexRecord(r: number): void {
    let s = this.home(this.rec, r * this.stride + KEY);
    while (this.index[s] !== 0) s = (s + 1) & this.mask;
    this.index[s] = r + 1;
  }

  private reindex(slots: number): void {
    this.index = new Int32Array(slots);
    this.mask = slots - 1;
    for (let r = 0; r < this.records; r++) if (this.isLive(r)) this.indexRecord(r);
  }

  /** Whether the record's data equals the `dataWords` words at `b[o]`. */
  dataEquals(r: number, b: Uint8Array, o: number): boolean {
    const d = r * this.stride + KEY + this.keyWords;
    for (let i = 0; i < this.dataWords; i++) if (this.rec[d + i] !== word(b, o + i * 4)) return false;
    return true;
  }

  setData(r: number, b: Uint8Array, o: number): void {
    const d = r * this.stride + KEY + this.keyWords;
    for (let i = 0; i < this.dataWords; i++) this.rec[d + i] = word(b, o + i * 4);
  }

  /** The key of a record as bytes (network order, as the kernel sent them). */
  keyBytes(r: number): Buffer {
    const out = Buffer.allocUnsafe(this.keyWords * 4);
    const k = r * this.stride + KEY;
    for (let i = 0; i < this.keyWords; i++) out.writeUInt32BE(this.rec[k + i]!, i * 4);
    return out;
  }

  /** Removes the key whose bytes start at `b[o]`; false when absent. Record numbers stay. */
  remove(b: Uint8Array, o: number): boolean {
    this.load(b, o);
    let s = this.home(this.probe, 0);
    for (; ; s = (s + 1) & this.mask) {
      const r = this.index[s]! - 1;
      if (r < 0) return false;
      if (this.keyIsProbe(r)) {
        this.rec[r * this.stride + SEEN] = 0;
        break;
      }
    }
    this.size--;
    // Backward-shift deletion in the index: a later entry may fill the hole at i only if its home
    // is not cyclically in (i, j].
    let i = s;
    this.index[i] = 0;
    for (let j = (i + 1) & this.mask; this.index[j] !== 0; j = (j + 1) & this.mask) {
      const h = this.home(this.rec, (this.index[j]! - 1) * this.stride + KEY);
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (stays) continue;
      this.index[i] = this.index[j]!;
      this.index[j] = 0;
      i = j;
    }
    return true;
  }

  /**
   * Rewrites the records in the order `order` (record numbers, each live one at most once), then
   * every other live record; removed records are dropped. Record numbers change: returns nothing,
   * callers must not keep them across a reorder.
   */
  reorder(order: Int32Array, count: number): void {
    const st = this.stride;
    const old = this.rec;
    const oldRecords = this.records;
    const next = new Float64Array(Math.max(16, this.size * 2) * st);
    const placed = new Uint8Array(oldRecords);
    let n = 0;
    const take = (r: number): void => {
      if (placed[r] || old[r * st + SEEN] === 0) return;
      placed[r] = 1;
      next.set(old.subarray(r * st, (r + 1) * st), n * st);
      n++;
    };
    for (let i = 0; i < count; i++) take(order[i]!);
    for (let r = 0; r < oldRecords; r++) take(r);
    this.rec = next;
    this.records = n;
    this.reindex(this.index.length);
  }
}
