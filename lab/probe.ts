import Redis from "ioredis";
import type { LabLogin } from "./stack";

/** A login: a shared password, or an ACL user over TLS. */
export type Login = LabLogin | string;

function loginOptions(login: Login) {
    return typeof login === "string"
        ? { password: login }
        : { username: login.username, password: login.password, tls: login.tls };
}

/**
 * Short-lived, fail-fast connections from the host to lab Redis and Sentinel processes, for status, the drill's
 * bookkeeping and assertions. Never retried: a node that does not answer within the timeout is reported as such.
 */
export async function withRedis<T>(
    host: string,
    port: number,
    login: Login,
    fn: (r: Redis) => Promise<T>,
    timeoutMs = 1500,
): Promise<T | undefined> {
    const r = new Redis({
        host,
        port,
        ...loginOptions(login),
        lazyConnect: true,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
        reconnectOnError: () => false,
    });
    r.on("error", () => undefined);
    try {
        await r.connect();
        return await fn(r);
    } catch {
        return undefined;
    } finally {
        r.disconnect();
    }
}

/** ioredis options of a login (a shared password, or an ACL user over TLS). */
export { loginOptions };

export function parseInfo(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
        const i = line.indexOf(":");
        if (i > 0 && !line.startsWith("#")) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
}

export async function info(
    host: string,
    port: number,
    login: Login,
    section = "replication",
    timeoutMs = 1500,
): Promise<Record<string, string> | undefined> {
    const text = await withRedis(host, port, login, (r) => r.info(section), timeoutMs);
    return text === undefined ? undefined : parseInfo(text);
}

/** `ip:port` of the master this Sentinel names, or undefined if it does not answer. */
export async function sentinelMaster(
    host: string,
    port: number,
    login: Login,
    masterName: string,
): Promise<string | undefined> {
    const reply = await withRedis(
        host,
        port,
        login,
        (r) => r.call("SENTINEL", "get-master-addr-by-name", masterName) as Promise<string[] | null>,
    );
    return reply ? `${reply[0]}:${reply[1]}` : undefined;
}

export async function ckquorum(host: string, port: number, login: Login, masterName: string): Promise<string> {
    const reply = await withRedis(host, port, login, async (r) => {
        try {
            return String(await r.call("SENTINEL", "CKQUORUM", masterName));
        } catch (e) {
            return (e as Error).message;
        }
    });
    return reply ?? "unreachable";
}
