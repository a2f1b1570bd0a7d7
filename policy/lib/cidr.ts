import * as ipaddr from "ipaddr.js";

export type Family = "ipv4" | "ipv6";

const BITS: Readonly<Record<Family, number>> = { ipv4: 32, ipv6: 128 };

/** [start, end) of a CIDR as integers, or undefined for text that is not a CIDR of `family`. */
function range(cidr: string, family: Family): [bigint, bigint] | undefined {
    let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
    try {
        parsed = ipaddr.parseCIDR(cidr);
    } catch {
        return undefined;
    }
    const [addr, prefix] = parsed;
    if (addr.kind() !== family) return undefined;
    const bits = BITS[family];
    const value = addr.toByteArray().reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
    const size = 1n << BigInt(bits - prefix);
    const start = (value / size) * size;
    return [start, start + size];
}

/**
 * Does this list of CIDRs cover every address of `family`? True for `0.0.0.0/0` and `::/0`, and for a union that adds
 * up to the same (`0.0.0.0/1` + `128.0.0.0/1`): both open a port to the whole internet.
 */
export function coversWholeInternet(cidrs: readonly string[], family: Family): boolean {
    const ranges = cidrs
        .map((c) => range(c, family))
        .filter((r): r is [bigint, bigint] => r !== undefined)
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let reached = 0n;
    for (const [start, end] of ranges) {
        if (start > reached) return false;
        if (end > reached) reached = end;
    }
    return reached === 1n << BigInt(BITS[family]);
}
