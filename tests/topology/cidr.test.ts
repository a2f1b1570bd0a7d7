import {
    CidrError,
    cidrContains,
    cidrsOverlap,
    coveredAddresses,
    formatCidr,
    ipFamily,
    isCidr,
    parseAddress,
    parseCidr,
    parsePrefix,
} from "../../topology/cidr";

describe("one CIDR module on ipaddr.js", () => {
    it("normalises to the network address and canonical text", () => {
        expect(formatCidr(parseCidr("10.1.2.3/8"))).toBe("10.0.0.0/8");
        expect(formatCidr(parseCidr("0.0.0.0/00"))).toBe("0.0.0.0/0");
        expect(formatCidr(parseCidr("2001:DB8:0:0::1/032"))).toBe("2001:db8::/32");
        expect(parseCidr("198.18.0.0/15")).toEqual({
            family: "ipv4",
            network: "198.18.0.0",
            prefixLength: 15,
            start: 0xc6120000n,
            size: 131072n,
        });
    });

    it("refuses what ipaddr.js alone reads differently, and what is not a prefix at all", () => {
        for (const bad of [
            "010.0.0.0/8",
            "10/8",
            "1.2.3/8",
            "0x0a.0.0.0/8",
            "fe80::1%eth0/64",
            "10.0.0.0/33",
            "::/129",
        ])
            expect(isCidr(bad)).toBe(false);
        for (const bad of ["", "10.0.0.0", "10.0.0.0/8 ", "10.0.0.0/8\n", "::ffff:1.2.3.4/128"])
            expect(isCidr(bad)).toBe(false);
        expect(() => parseCidr("010.0.0.0/8")).toThrow(CidrError);
        expect(() => parseAddress("198.18.1")).toThrow(CidrError);
        expect(() => parseAddress("10.0.0.0/8")).toThrow(CidrError);
    });

    it("reads bare addresses as one-address prefixes where route tables print them", () => {
        expect(formatCidr(parsePrefix("192.0.2.1"))).toBe("192.0.2.1/32");
        expect(formatCidr(parsePrefix("2001:db8::1"))).toBe("2001:db8::1/128");
        expect(formatCidr(parsePrefix("192.0.2.0/24"))).toBe("192.0.2.0/24");
        expect(ipFamily("2001:db8::/32")).toBe("ipv6");
        expect(ipFamily("192.0.2.7")).toBe("ipv4");
    });

    it("answers containment and overlap, never across families", () => {
        const lab = parseCidr("198.18.0.0/15");
        expect(cidrContains(lab, "198.19.255.255")).toBe(true);
        expect(cidrContains(lab, "198.20.0.0")).toBe(false);
        expect(cidrContains(lab, parseCidr("198.18.3.0/24"))).toBe(true);
        expect(cidrContains(lab, parseCidr("198.0.0.0/8"))).toBe(false);
        expect(cidrsOverlap(lab, parseCidr("198.0.0.0/8"))).toBe(true);
        expect(cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("::/0"))).toBe(false);
    });

    it("counts the union of a list once per address", () => {
        const list = ["10.0.0.0/9", "10.128.0.0/9", "10.1.0.0/16", "192.0.2.0/24", "2001:db8::/127"].map(parseCidr);
        expect(coveredAddresses(list, "ipv4")).toBe(2n ** 24n + 256n);
        expect(coveredAddresses(list, "ipv6")).toBe(2n);
        expect(coveredAddresses(["0.0.0.0/1", "128.0.0.0/1"].map(parseCidr), "ipv4")).toBe(2n ** 32n);
        expect(coveredAddresses([], "ipv4")).toBe(0n);
    });
});
