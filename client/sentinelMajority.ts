import Redis from "ioredis";
import type { RedisOptions } from "ioredis";
import { probeConnectionOptions } from "./ioredisOptions";

/** What one Sentinel said when asked for the master's address. */
export type SentinelAnswer =
    { readonly sentinel: string; readonly master: string } | { readonly sentinel: string; readonly error: Error };

/** What the configured Sentinels say, taken together. */
export interface MajorityVerdict {
    /** The master (`host:port`) more than half of ALL configured Sentinels name, or null (none does yet). */
    readonly majority: string | null;
    /**
     * The master most answering Sentinels name (a tie goes to the Sentinel listed first), or null when none
     * answered. Only a fallback: it may be a cut-off minority's stale master.
     */
    readonly plurality: string | null;
    /** Every answer and failure received, in the order they arrived. */
    readonly answers: readonly SentinelAnswer[];
}

/** More than half of `total` Sentinels: the quorum that can elect a failover leader (FACTS: Sentinel majority). */
export function majorityOf(total: number): number {
    return Math.floor(total / 2) + 1;
}

/**
 * Judges the answers received so far from `order` (the configured Sentinels, `host:port`). A majority is counted
 * against every configured Sentinel, not against those that answered: a minority cut off with the old master agrees
 * with itself, and must never outvote the Sentinels it cannot reach.
 */
export function judgeAnswers(answers: readonly SentinelAnswer[], order: readonly string[]): MajorityVerdict {
    const votes = new Map<string, number>();
    for (const a of answers) if ("master" in a) votes.set(a.master, (votes.get(a.master) ?? 0) + 1);
    const need = majorityOf(order.length);
    let majority: string | null = null;
    let plurality: string | null = null;
    let best = 0;
    // Candidates in the order of the first configured Sentinel naming them: ties go to the one listed first.
    const rank = (m: string) =>
        Math.min(...answers.flatMap((a) => ("master" in a && a.master === m ? [order.indexOf(a.sentinel)] : [])));
    for (const [m, n] of [...votes].sort((a, b) => rank(a[0]) - rank(b[0]))) {
        if (n >= need) majority = m;
        if (n > best) {
            best = n;
            plurality = m;
        }
    }
    return { majority, plurality, answers };
}

/** Asks one Sentinel (`host:port`) for the master's address; null when it does not know the name. */
export type AskSentinel = (sentinel: string, signal: AbortSignal) => Promise<string | null>;

/**
 * Asks every Sentinel in `sentinels` at once. Resolves as soon as a majority of them name one master (the slowest,
 * or an unreachable one, is not waited for: it is aborted), else once every one has answered or failed.
 */
export function askSentinels(sentinels: readonly string[], ask: AskSentinel): Promise<MajorityVerdict> {
    const abort = new AbortController();
    const answers: SentinelAnswer[] = [];
    return new Promise((resolve) => {
        let pending = sentinels.length;
        const settle = (answer: SentinelAnswer) => {
            if (abort.signal.aborted) return;
            answers.push(answer);
            pending -= 1;
            const verdict = judgeAnswers(answers, sentinels);
            if (verdict.majority !== null || pending === 0) {
                abort.abort();
                resolve(verdict);
            }
        };
        if (pending === 0) resolve(judgeAnswers(answers, sentinels));
        for (const sentinel of sentinels) {
            ask(sentinel, abort.signal).then(
                (master) => {
                    settle(
                        master === null
                            ? { sentinel, error: new Error(`Sentinel ${sentinel} does not know the master`) }
                            : { sentinel, master },
                    );
                },
                (err: unknown) => {
                    settle({ sentinel, error: err instanceof Error ? err : new Error(String(err)) });
                },
            );
        }
    });
}

/** How to reach the Sentinels: their credentials, TLS and timeouts. */
export interface SentinelAccess {
    readonly username?: string;
    readonly password?: string;
    readonly tls?: RedisOptions["tls"];
    readonly connectMs: number;
    readonly commandMs: number;
}

/**
 * An {@link AskSentinel} over a short-lived connection per question (`SENTINEL GET-MASTER-ADDR-BY-NAME`), as ioredis'
 * own connector asks: one attempt, bounded by `connectMs` to connect and `commandMs` to answer, dropped on abort.
 */
export function sentinelAsker(masterName: string, access: SentinelAccess): AskSentinel {
    return async (sentinel, signal) => {
        const i = sentinel.lastIndexOf(":");
        const conn = new Redis({
            ...probeConnectionOptions(
                { host: sentinel.slice(0, i), port: Number(sentinel.slice(i + 1)) },
                { username: access.username, password: access.password, tls: access.tls },
                access.connectMs,
            ),
            commandTimeout: access.commandMs,
        });
        conn.on("error", () => undefined);
        const drop = () => {
            conn.disconnect();
        };
        signal.addEventListener("abort", drop, { once: true });
        try {
            await conn.connect();
            const reply = await conn.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName);
            return Array.isArray(reply) && reply.length >= 2 ? `${String(reply[0])}:${String(reply[1])}` : null;
        } finally {
            signal.removeEventListener("abort", drop);
            if (conn.status !== "end") conn.disconnect();
        }
    };
}
