/** Resolves on a later event-loop turn (after pending I/O callbacks): how long work lets others run. */
export const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The most bytes a slice of work between two yields should touch (copy, hash, encode). */
export const SLICE_BYTES = 1 << 20;

/**
 * When work done in slices should yield: after `maxItems` items or `maxBytes` bytes, whichever
 * comes first. Counting items alone lets a few large ones (values of a MiB) make one slice of
 * everything; counting bytes alone lets millions of tiny ones do the same.
 */
export class SliceBudget {
  private items = 0;
  private bytes = 0;

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes = SLICE_BYTES,
  ) {}

  /** Counts one item of `bytes`; true when the slice is used up (the next one starts empty). */
  spend(bytes: number): boolean {
    this.bytes += bytes;
    if (++this.items < this.maxItems && this.bytes < this.maxBytes) return false;
    this.items = 0;
    this.bytes = 0;
    return true;
  }
}
