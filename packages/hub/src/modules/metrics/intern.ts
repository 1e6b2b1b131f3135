/**
 * Shared, immutable series key lists and minute indexes, one per distinct content.
 *
 * Every host keeps the key list of its latest report of each kind and an index of the series in
 * its open minute. Hosts built alike report the same series (the same disks, interfaces, cores), so
 * 10,000 hosts held 10,000 copies of the same few lists and maps: about 60 MB of the hub's heap
 * that the collector marked on every full collection. Interned, alike hosts share one of each.
 *
 * Entries are held weakly: a list or index that no host uses any more is collected, and its entry
 * leaves the table with it (hosts whose interfaces come and go would otherwise grow it for ever).
 * Lookups hash the whole list, so callers intern only when a host's list changes: the first report
 * of a kind, or a layout change, never every report.
 */

class WeakTable<T extends object> {
  private readonly map = new Map<string, WeakRef<T>>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    // the entry may have been replaced by a live value since this one was collected
    if (this.map.get(key)?.deref() === undefined) this.map.delete(key);
  });

  get(key: string): T | undefined {
    return this.map.get(key)?.deref();
  }

  set(key: string, value: T): void {
    this.map.set(key, new WeakRef(value));
    this.registry.register(value, key);
  }
}

const SEP = '\u0000'; // cannot occur in a series key (the wire schema allows printable text only)
const lists = new WeakTable<readonly string[]>();

/** The shared list with exactly these keys in this order (`keys` itself when it is the first). */
export function internKeys(keys: readonly string[]): readonly string[] {
  const id = keys.join(SEP);
  const found = lists.get(id);
  if (found) return found;
  const own = Object.freeze(keys.slice());
  lists.set(id, own);
  return own;
}

/**
 * An open minute's series index: series keys in the order they first arrived, each at its slot.
 * Shared and never changed: a host that meets new series moves to the index of its old keys plus
 * the new ones (`extend`), whose slots for the old keys are the same, so its values stay put.
 */
export class SeriesIndex {
  readonly slot = new Map<string, number>();
  private sortedCache: { keys: readonly string[]; slots: Int32Array } | undefined;
  private constructor(readonly keys: readonly string[]) {
    for (let i = 0; i < keys.length; i++) this.slot.set(keys[i]!, i);
  }

  static readonly empty = new SeriesIndex([]);

  get size(): number {
    return this.keys.length;
  }

  /** The index of these keys followed by `more` (keys not in this index, without repeats). */
  extend(more: readonly string[]): SeriesIndex {
    const keys = this.keys.concat(more);
    const id = keys.join(SEP);
    const found = indexes.get(id);
    if (found) return found;
    const made = new SeriesIndex(keys);
    indexes.set(id, made);
    return made;
  }

  /** Keys in sorted order with their slots, for writing a minute bucket. */
  sorted(): { keys: readonly string[]; slots: Int32Array } {
    if (!this.sortedCache) {
      const keys = internKeys([...this.keys].sort());
      this.sortedCache = { keys, slots: Int32Array.from(keys, (k) => this.slot.get(k)!) };
    }
    return this.sortedCache;
  }
}

const indexes = new WeakTable<SeriesIndex>();
