/**
 * One call waiting on a deadline slot (see {@link DeadlineSlots}). Subclasses say what happens at
 * the deadline; the links make joining and leaving a slot O(1) without a Set or a closure per call.
 */
export abstract class DeadlineWaiter {
    /** @internal */ slotPrev: DeadlineWaiter | null = null;
    /** @internal */ slotNext: DeadlineWaiter | null = null;
    /** @internal */ slot: DeadlineSlot | null = null;
    /** Called once at the deadline if the waiter has not left its slot by then. */
    abstract expired(): void;

    /** Unregisters from the slot (no-op if already expired or left). */
    leave(): void {
        const s = this.slot;
        if (!s) return;
        this.slot = null;
        if (this.slotPrev) this.slotPrev.slotNext = this.slotNext;
        else s.head = this.slotNext;
        if (this.slotNext) this.slotNext.slotPrev = this.slotPrev;
        this.slotPrev = this.slotNext = null;
        if (--s.size === 0) s.timer.unref();
    }
}

/** @internal */
export interface DeadlineSlot {
    readonly ctrl: AbortController;
    readonly timer: NodeJS.Timeout;
    head: DeadlineWaiter | null;
    size: number;
}

/**
 * Deadlines that expire in the same slot share one timer and one AbortController. Creating an
 * AbortController per call was the largest single cost of the call path (Node's EventTarget),
 * measured with a CPU profile under load. A slot lives until its time comes even when its calls
 * have finished, so that calls made one after another within the same slot reuse it; its timer
 * holds the process open only while some call still waits on it. Waiters are an intrusive
 * doubly-linked list: joining and leaving allocate nothing and hash nothing.
 *
 * A slot is {@link slotWidthMs} wide: 5 ms for short deadlines, up to 50 ms for the usual ones of
 * seconds. With 5 ms slots for a 10 s deadline, calls made one after another at 1 in flight made a
 * new slot (an AbortController, a timer, and an abort at its expiry) every 50–70 calls, about 3 % of
 * the client's CPU in a profile; 50 ms slots make that ten times rarer.
 */
class DeadlineSlots {
    private readonly slots = new Map<number, DeadlineSlot>();
    private lastAt = -1;
    private last: DeadlineSlot | undefined;

    /**
     * Registers `w` to expire about `ms` after `now` (`performance.now()`, read by the caller when it
     * reads the clock anyway; never earlier, up to {@link slotWidthMs} later). Returns the signal that
     * aborts at that time.
     */
    join(ms: number, w: DeadlineWaiter, now: number): AbortSignal {
        const width = slotWidthMs(ms);
        const at = Math.ceil((now + ms) / width) * width;
        let slot = at === this.lastAt ? this.last : this.slots.get(at);
        if (!slot) {
            const ctrl = new AbortController();
            const s: DeadlineSlot = {
                ctrl,
                head: null,
                size: 0,
                timer: setTimeout(() => {
                    this.expire(at, s);
                }, at - now),
            };
            slot = s;
            this.slots.set(at, slot);
        } else if (slot.size === 0) {
            slot.timer.ref();
        }
        this.lastAt = at;
        this.last = slot;
        w.slot = slot;
        w.slotPrev = null;
        w.slotNext = slot.head;
        if (slot.head) slot.head.slotPrev = w;
        slot.head = w;
        slot.size += 1;
        return slot.ctrl.signal;
    }

    private expire(at: number, s: DeadlineSlot): void {
        this.slots.delete(at);
        if (this.lastAt === at) {
            this.lastAt = -1;
            this.last = undefined;
        }
        // A shared reason: `abort()` without one builds a DOMException, stack trace included, every time.
        s.ctrl.abort(DEADLINE_PASSED);
        const due: DeadlineWaiter[] = [];
        for (let w = s.head; w; w = w.slotNext) due.push(w);
        for (const w of due) {
            if (w.slot !== s) continue; // left meanwhile (an earlier expiry settled it)
            w.leave();
            w.expired();
        }
    }
}

/** The abort reason of every deadline signal. */
export const DEADLINE_PASSED: Error = Object.freeze(new Error("call deadline passed"));

/**
 * Width of the slot of a deadline `ms` long: a deadline fires up to this much late, never early.
 * 1/64 of the deadline (under 1.6 % late), at least 5 ms and at most 50 ms.
 */
export function slotWidthMs(ms: number): number {
    return Math.min(50, Math.max(5, Math.floor(ms / 64)));
}

const slots = new DeadlineSlots();

/** Joins the shared deadline slot `ms` after `now` (`performance.now()`): see {@link DeadlineWaiter}. */
export function joinDeadline(ms: number, w: DeadlineWaiter, now = performance.now()): AbortSignal {
    return slots.join(ms, w, now);
}
