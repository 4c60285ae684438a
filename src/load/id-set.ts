/**
 * Whether any id of a batch repeats, without keeping the ids themselves. A
 * Set of the id strings would keep 50,000 strings alive for a whole batch,
 * long enough for V8 to move them to its old generation, where garbage waits
 * for a full collection: the loader's memory grew by tens of MB that way.
 *
 * Each id is kept as two 32-bit hashes in an open-addressing table of typed
 * arrays, reused from batch to batch. Two different ids with the same two
 * hashes (odds of about 1 in 10^9 for a batch of 50,000) count as a repeat,
 * which costs only what a real repeat costs: the merge's sort. So does a
 * batch too large for the table.
 */
export class IdSet {
  /** Pairs of hashes, [h1, h2] at 2i and 2i+1; h1 is never 0, so 0 marks a free slot. */
  private slots: Uint32Array;
  private mask: number;
  private limit: number;
  /** The capacity `expected` ids need: the table grows to it as ids come, not before (most batches are small). */
  private readonly maxCapacity: number;
  private size = 0;

  /** `maxSlots`: the largest table (a power of two), 8 bytes a slot; half of it can be filled. */
  constructor(expected: number, maxSlots = MAX_CAPACITY) {
    let capacity = MIN_CAPACITY;
    while (capacity < expected * 2 && capacity < maxSlots) capacity *= 2;
    this.maxCapacity = capacity;
    this.slots = new Uint32Array(MIN_CAPACITY * 2);
    this.mask = MIN_CAPACITY - 1;
    this.limit = MIN_CAPACITY / 2;
  }

  clear(): void {
    if (this.size > 0) this.slots.fill(0);
    this.size = 0;
  }

  /** Adds an id; true when it was (probably) there already, or the table is full. */
  addRepeats(id: string): boolean {
    if (this.size >= this.limit && !this.grow()) return true;
    let h1 = 0x811c9dc5;
    let h2 = 0x9747b28c;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    h1 = (h1 | 1) >>> 0;
    h2 = h2 >>> 0;
    return this.place(h1, h2);
  }

  /**
   * addRepeats of the UTF-8 text src[start, end) (valid UTF-8): the same
   * hashes as its string's, read from the bytes while they are ASCII (one
   * byte a UTF-16 unit), from the decoded string otherwise.
   */
  addRepeatsBytes(src: Buffer, start: number, end: number): boolean {
    let h1 = 0x811c9dc5;
    let h2 = 0x9747b28c;
    for (let i = start; i < end; i++) {
      const c = src[i]!;
      if (c >= 0x80) return this.addRepeats(src.toString('utf8', start, end));
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    if (this.size >= this.limit && !this.grow()) return true;
    return this.place((h1 | 1) >>> 0, h2 >>> 0);
  }

  /** Puts a pair of hashes in its slot; true when it was there already. */
  private place(h1: number, h2: number): boolean {
    for (let slot = (h1 ^ (h2 >>> 7)) & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = slot * 2;
      const k = this.slots[at]!;
      if (k === 0) {
        this.slots[at] = h1;
        this.slots[at + 1] = h2;
        this.size++;
        return false;
      }
      if (k === h1 && this.slots[at + 1] === h2) return true;
    }
  }

  /** Doubles the table, up to the capacity asked for; false when it is there already. */
  private grow(): boolean {
    const capacity = this.mask + 1;
    if (capacity >= this.maxCapacity) return false;
    const old = this.slots;
    this.slots = new Uint32Array(capacity * 4);
    this.mask = capacity * 2 - 1;
    this.limit = capacity;
    this.size = 0;
    for (let at = 0; at < old.length; at += 2) if (old[at] !== 0) this.place(old[at]!, old[at + 1]!);
    return true;
  }
}

const MIN_CAPACITY = 1024;
/** 2^21 slots, 16 MB: past about a million records a batch, the merge sorts. */
const MAX_CAPACITY = 2 ** 21;
