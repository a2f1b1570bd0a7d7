import ipaddr from "ipaddr.js";

/**
 * The one CIDR and IP address module of this project (config validation, the firewall, the lab), on ipaddr.js.
 *
 * ipaddr.js alone is too lenient for config: it reads `010.0.0.0/8` as octal (8.0.0.0), `10/8` as 0.0.0.10 and
 * accepts IPv6 zone ids. Input is therefore gated first (four-part decimal IPv4, plain IPv6) and then normalised to
 * its network address, so `10.1.2.3/8` and `10.0.0.0/08` both become `10.0.0.0/8`.
 */

export type IpFamily = "ipv4" | "ipv6";

/** A parsed, normalised prefix. */
export interface Cidr {
    readonly family: IpFamily;
    /** Network address in canonical text form (host bits cleared). */
    readonly network: string;
    readonly prefixLength: number;
    /** First address as an integer. */
    readonly start: bigint;
    /** Number of addresses covered: 2^(bits - prefixLength). */
    readonly size: bigint;
}

/** A text that is not an IPv4/IPv6 address or prefix. */
export class CidrError extends Error {
    constructor(readonly text: string) {
        super(`not an IP prefix (a.b.c.d/n or x:y::/n): ${JSON.stringify(text)}`);
        this.name = "CidrError";
    }
}

const BITS: Readonly<Record<IpFamily, number>> = { ipv4: 32, ipv6: 128 };

function toBigInt(bytes: readonly number[]): bigint {
    return bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

/** Text form of a prefix: `10.0.0.0/8`, `2001:db8::/32`. */
export function formatCidr(c: Cidr): string {
    return `${c.network}/${String(c.prefixLength)}`;
}

/** Parses `a.b.c.d/n` or `x:y::/n` strictly and clears host bits; throws CidrError otherwise. */
export function parseCidr(text: string): Cidr {
    let family: IpFamily;
    if (ipaddr.IPv4.isValidCIDRFourPartDecimal(text)) family = "ipv4";
    else if (!text.includes("%") && !text.includes(".") && ipaddr.IPv6.isValidCIDR(text)) family = "ipv6";
    else throw new CidrError(text);
    const prefixLength = ipaddr.parseCIDR(text)[1];
    const network =
        family === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
    return {
        family,
        network: network.toString(),
        prefixLength,
        start: toBigInt(network.toByteArray()),
        size: 1n << BigInt(BITS[family] - prefixLength),
    };
}

/** True for a prefix `parseCidr` accepts. */
export function isCidr(text: string): boolean {
    try {
        parseCidr(text);
        return true;
    } catch (e) {
        if (e instanceof CidrError) return false;
        throw e;
    }
}

/** Parses a bare IPv4 (four-part decimal) or IPv6 address as a one-address prefix. */
export function parseAddress(text: string): Cidr {
    if (ipaddr.IPv4.isValidFourPartDecimal(text)) return parseCidr(`${text}/32`);
    if (!text.includes("%") && !text.includes(".") && !text.includes("/") && ipaddr.IPv6.isValid(text))
        return parseCidr(`${text}/128`);
    throw new CidrError(text);
}

/** A prefix as `ip route` prints it: `a.b.c.d/n`, or a bare address for a host route. */
export function parsePrefix(text: string): Cidr {
    return text.includes("/") ? parseCidr(text) : parseAddress(text);
}

/** Family of a prefix or address text; throws CidrError if it is neither. */
export function ipFamily(text: string): IpFamily {
    return parsePrefix(text).family;
}

/** Does `outer` contain the whole of `inner` (a prefix, or an address given as text)? */
export function cidrContains(outer: Cidr, inner: Cidr | string): boolean {
    const c = typeof inner === "string" ? parseAddress(inner) : inner;
    return (
        c.family === outer.family &&
        c.prefixLength >= outer.prefixLength &&
        c.start >= outer.start &&
        c.start < outer.start + outer.size
    );
}

/** True when one prefix lies inside the other (prefixes never partially overlap). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
    return cidrContains(a, b) || cidrContains(b, a);
}

/** Addresses of one family covered by the union of `cidrs` (overlaps counted once). */
export function coveredAddresses(cidrs: readonly Cidr[], family: IpFamily): bigint {
    const ranges = cidrs
        .filter((c) => c.family === family)
        .map((c) => [c.start, c.start + c.size] as const)
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let total = 0n;
    let end = -1n;
    for (const [s, e] of ranges) {
        if (e <= end) continue;
        total += e - (s > end ? s : end);
        end = e;
    }
    return total;
}

/** Number of addresses in one prefix of length `prefixLength`. */
export function prefixSize(family: IpFamily, prefixLength: number): bigint {
    return 1n << BigInt(BITS[family] - prefixLength);
}
