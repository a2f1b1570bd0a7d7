import { LabError } from "./errors";

/** Minimal IPv4 arithmetic: enough to allocate lab addresses and check overlaps. */

export interface Cidr {
    /** Network address as an unsigned 32-bit number. */
    base: number;
    prefixLen: number;
}

export function parseIpv4(text: string): number {
    const parts = text.split(".");
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
        throw new LabError(`not an IPv4 address: ${text}`);
    }
    return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** Parses "a.b.c.d/len"; a bare address is a /32. The base is masked. */
export function parseCidr(text: string): Cidr {
    const [addr, len] = text.split("/");
    const prefixLen = len === undefined ? 32 : Number(len);
    if (addr === undefined || !Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) {
        throw new LabError(`not an IPv4 prefix: ${text}`);
    }
    const size = 2 ** (32 - prefixLen);
    return { base: Math.floor(parseIpv4(addr) / size) * size, prefixLen };
}

export function cidrContains(outer: Cidr, address: number): boolean {
    const size = 2 ** (32 - outer.prefixLen);
    return address >= outer.base && address < outer.base + size;
}

/** True when one prefix lies inside the other (IPv4 prefixes never partially overlap). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
    return cidrContains(a, b.base) || cidrContains(b, a.base);
}
