import { peerAddress } from "../../../client/connection";
import { FailoverEvent, FailoverWatcher, parseSwitchMaster, parseTryFailover } from "../../../client/failoverWatcher";
import { resolveOptions } from "../../../client/options";

describe("Sentinel message parsing", () => {
    test("+switch-master", () => {
        const at = new Date(0);
        expect(parseSwitchMaster("mymaster 10.0.0.1 6379 10.0.0.2 6380", "mymaster", at)).toEqual({
            masterName: "mymaster",
            from: "10.0.0.1:6379",
            to: "10.0.0.2:6380",
            at,
            source: "sentinel",
        });
        expect(parseSwitchMaster("other 10.0.0.1 6379 10.0.0.2 6380", "mymaster")).toBeNull();
        expect(parseSwitchMaster("mymaster 10.0.0.1 6379", "mymaster")).toBeNull();
    });
    test("+try-failover", () => {
        expect(parseTryFailover("master mymaster 10.0.0.1 6379", "mymaster")).toBe("10.0.0.1:6379");
        expect(parseTryFailover("master other 10.0.0.1 6379", "mymaster")).toBeNull();
        expect(parseTryFailover("slave 10.0.0.2:6379 10.0.0.2 6379 @ mymaster 10.0.0.1 6379", "mymaster")).toBeNull();
    });
    test("peer addresses unwrap IPv4-mapped IPv6", () => {
        expect(peerAddress({ remoteAddress: "::ffff:10.0.0.1", remotePort: 6379 })).toBe("10.0.0.1:6379");
        expect(peerAddress({ remoteAddress: "::1", remotePort: 6379 })).toBe("::1:6379");
        expect(peerAddress(undefined)).toBeNull();
    });
});

describe("FailoverWatcher.report", () => {
    test("each Sentinel's copy of one switch is reported once; a switch back and forth again is reported each time", () => {
        // Sentinels at a closed port: the watcher's subscribers never connect (and retry quietly).
        const w = new FailoverWatcher(
            resolveOptions({
                sentinels: [{ host: "127.0.0.1", port: 1 }],
                masterName: "m",
                timeouts: { connectMs: 50 },
            }),
        );
        try {
            const seen: FailoverEvent[] = [];
            w.on("failover", (e) => seen.push(e));
            const e = (from: string, to: string, ms: number): FailoverEvent => ({
                masterName: "m",
                from,
                to,
                at: new Date(ms),
                source: "sentinel",
            });
            w.report(e("a:1", "b:1", 1000));
            w.report(e("a:1", "b:1", 1500));
            w.report(e("a:1", "b:1", 2500));
            w.report(e("b:1", "a:1", 3000));
            w.report(e("b:1", "a:1", 3100));
            // A→B, B→A, then A→B again seconds later: a new switch, not a copy (was dropped for 60 s).
            w.report(e("a:1", "b:1", 8000));
            w.report(e("a:1", "b:1", 8100));
            expect(seen.map((x) => `${x.from}->${x.to}@${x.at.getTime()}`)).toEqual([
                "a:1->b:1@1000",
                "b:1->a:1@3000",
                "a:1->b:1@8000",
            ]);
        } finally {
            w.close();
        }
    });
});
