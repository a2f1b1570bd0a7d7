import { EventEmitter, IDefaultPolicyContext, IFailureEvent, IPolicy, ISuccessEvent, TaskCancelledError } from "cockatiel";

/**
 * Deadlines that expire in the same `granularityMs` slot share one timer and one AbortController.
 * Creating an AbortController per call was the largest single cost of the call path (Node's
 * EventTarget), measured with a CPU profile under load. A slot lives until its time comes even
 * when its calls have finished, so that calls made one after another within the same few ms reuse
 * it; its timer holds the process open only while some call still waits on it.
 */
class DeadlineSlots {
  private readonly slots = new Map<number, { ctrl: AbortController; expire: Set<() => void>; timer: NodeJS.Timeout }>();

  constructor(private readonly granularityMs: number) {}

  /**
   * Registers `onExpire` to run about `ms` from now (never earlier; up to `granularityMs` later).
   * Returns the signal that aborts at that time and a function that unregisters.
   */
  join(ms: number, onExpire: () => void): { signal: AbortSignal; leave: () => void } {
    const at = Math.ceil((Date.now() + ms) / this.granularityMs) * this.granularityMs;
    let slot = this.slots.get(at);
    if (!slot) {
      const ctrl = new AbortController();
      const expire = new Set<() => void>();
      const timer = setTimeout(() => {
        this.slots.delete(at);
        ctrl.abort();
        for (const f of expire) f();
      }, at - Date.now());
      slot = { ctrl, expire, timer };
      this.slots.set(at, slot);
    } else if (slot.expire.size === 0) {
      slot.timer.ref();
    }
    const s = slot;
    s.expire.add(onExpire);
    return {
      signal: s.ctrl.signal,
      leave: () => {
        s.expire.delete(onExpire);
        if (s.expire.size === 0) s.timer.unref();
      },
    };
  }
}

const slots = new DeadlineSlots(5);

/**
 * A per-call deadline as a cockatiel policy (composable with `wrap`), with the semantics of
 * cockatiel's `timeout(ms, TimeoutStrategy.Aggressive)`: the caller gets a `TaskCancelledError` at
 * the deadline (up to 5 ms later, never earlier), and the inner policies see their `signal` abort,
 * so retries and waits for a connection stop.
 *
 * Why not cockatiel's `TimeoutPolicy`: measured here at 7.8 µs per call (11.8 µs for the whole
 * stack, against ~9 µs for a whole loopback GET). It creates an AbortController per call,
 * subscribes to it through Node's EventTarget, races an extra promise, and by default aborts the
 * signal on return, which builds a DOMException every time. This one shares timers and signals
 * between calls whose deadlines fall in the same 5 ms slot.
 */
export class DeadlinePolicy implements IPolicy<IDefaultPolicyContext> {
  declare readonly _altReturn: never;
  // Required by IPolicy; this policy reports through the breaker and retry policies instead.
  readonly onSuccess = new EventEmitter<ISuccessEvent>().addListener;
  readonly onFailure = new EventEmitter<IFailureEvent>().addListener;

  constructor(readonly durationMs: number) {}

  execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, parent?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const expire = () => {
        if (settled) return;
        settled = true;
        reject(new TaskCancelledError(`Operation timed out after ${this.durationMs}ms`));
      };
      let { signal, leave } = slots.join(this.durationMs, expire);
      if (parent) {
        // Nested under another deadline: abort with whichever comes first.
        const ctrl = new AbortController();
        const abort = () => {
          ctrl.abort();
          expire();
        };
        if (parent.aborted || signal.aborted) abort();
        parent.addEventListener("abort", abort, { once: true });
        signal.addEventListener("abort", abort, { once: true });
        const leaveSlot = leave;
        leave = () => {
          leaveSlot();
          parent.removeEventListener("abort", abort);
          signal.removeEventListener("abort", abort);
        };
        signal = ctrl.signal;
      }
      const ctx = { signal };
      Promise.resolve()
        .then(() => fn(ctx))
        .then(
          (value) => {
            leave();
            if (settled) return;
            settled = true;
            resolve(value);
          },
          (err) => {
            leave();
            if (settled) return;
            settled = true;
            reject(err);
          },
        );
    });
  }
}
