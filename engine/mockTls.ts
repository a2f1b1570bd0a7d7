import { spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * What @pulumi/tls answers for a CA, a certificate request and a signed certificate, made for real with OpenSSL, so
 * that the lab's Redis and Sentinel serve TLS with them exactly as a deployed node would. Results are kept per
 * resource name and inputs (in memory, and in `cacheDir` when given: the lab keeps them until `lab down`, as Pulumi
 * keeps them in state).
 */
export const TLS_TYPES = {
    privateKey: "tls:index/privateKey:PrivateKey",
    selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
    certRequest: "tls:index/certRequest:CertRequest",
    locallySignedCert: "tls:index/locallySignedCert:LocallySignedCert",
} as const;

const memo = new Map<string, Record<string, unknown>>();

interface Subject {
    commonName?: string;
    organization?: string;
}

function subjectArg(subject: unknown): string {
    const s = (subject ?? {}) as Subject;
    const esc = (v: string) => v.replace(/[/\\]/g, "\\$&");
    return (
        `${s.commonName ? `/CN=${esc(s.commonName)}` : ""}${s.organization ? `/O=${esc(s.organization)}` : ""}` || "/"
    );
}

function openssl(args: string[], dir: string): void {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

function endTime(hours: number): string {
    return new Date(Date.now() + hours * 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
}

function compute(type: string, inputs: Record<string, unknown>): Record<string, unknown> {
    if (type === TLS_TYPES.privateKey) {
        const { privateKey, publicKey } = generateKeyPairSync("ec", {
            namedCurve: "prime256v1",
            privateKeyEncoding: { type: "sec1", format: "pem" },
            publicKeyEncoding: { type: "spki", format: "pem" },
        });
        return { ...inputs, privateKeyPem: privateKey, publicKeyPem: publicKey };
    }
    const dir = mkdtempSync(join(tmpdir(), "mock-tls-"));
    const file = (name: string, content: unknown) => {
        writeFileSync(join(dir, name), String(content), { mode: 0o600 });
        return name;
    };
    const hours = Number(inputs.validityPeriodHours ?? 8760);
    const days = String(Math.max(1, Math.floor(hours / 24)));
    /** Runs `openssl` writing cert.pem, and returns the certificate as @pulumi/tls reports it. */
    const certificate = (args: string[]) => {
        openssl([...args, "-out", "cert.pem"], dir);
        return { certPem: readFileSync(join(dir, "cert.pem"), "utf8"), validityEndTime: endTime(hours) };
    };
    try {
        switch (type) {
            case TLS_TYPES.selfSignedCert: {
                return {
                    ...inputs,
                    ...certificate([
                        "req",
                        "-x509",
                        "-new",
                        "-key",
                        file("key.pem", inputs.privateKeyPem),
                        "-subj",
                        subjectArg(inputs.subject),
                        "-days",
                        days,
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ]),
                };
            }
            case TLS_TYPES.certRequest: {
                const ips = (inputs.ipAddresses as string[] | undefined) ?? [];
                const dns = (inputs.dnsNames as string[] | undefined) ?? [];
                const san = [...ips.map((i) => `IP:${i}`), ...dns.map((d) => `DNS:${d}`)].join(",");
                openssl(
                    [
                        "req",
                        "-new",
                        "-key",
                        file("key.pem", inputs.privateKeyPem),
                        "-subj",
                        subjectArg(inputs.subject),
                        ...(san ? ["-addext", `subjectAltName=${san}`] : []),
                        "-out",
                        "req.pem",
                    ],
                    dir,
                );
                return { ...inputs, certRequestPem: readFileSync(join(dir, "req.pem"), "utf8") };
            }
            case TLS_TYPES.locallySignedCert: {
                const uses = new Set((inputs.allowedUses as string[] | undefined) ?? []);
                const ku = [
                    ...(uses.has("digital_signature") ? ["digitalSignature"] : []),
                    ...(uses.has("key_encipherment") ? ["keyEncipherment"] : []),
                ];
                const eku = [
                    ...(uses.has("server_auth") ? ["serverAuth"] : []),
                    ...(uses.has("client_auth") ? ["clientAuth"] : []),
                ];
                const ext = [
                    "basicConstraints=CA:FALSE",
                    ...(ku.length ? [`keyUsage=critical,${ku.join(",")}`] : []),
                    ...(eku.length ? [`extendedKeyUsage=${eku.join(",")}`] : []),
                ];
                return {
                    ...inputs,
                    ...certificate([
                        "x509",
                        "-req",
                        "-in",
                        file("req.pem", inputs.certRequestPem),
                        "-CA",
                        file("ca.pem", inputs.caCertPem),
                        "-CAkey",
                        file("ca-key.pem", inputs.caPrivateKeyPem),
                        "-set_serial",
                        `0x${randomBytes(16).toString("hex")}`,
                        "-days",
                        days,
                        "-copy_extensions",
                        "copy",
                        "-extfile",
                        file("ext.cnf", `${ext.join("\n")}\n`),
                    ]),
                    readyForRenewal: false,
                };
            }
            default:
                throw new Error(`not a tls type: ${type}`);
        }
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

/** The provider state of a tls resource: generated once per name and inputs, then reused. */
export function mockTlsState(
    type: string,
    name: string,
    inputs: Record<string, unknown>,
    cacheDir?: string,
): Record<string, unknown> {
    const key = createHash("sha256")
        .update(JSON.stringify([type, name, inputs]))
        .digest("hex")
        .slice(0, 32);
    const known = memo.get(key);
    if (known) return known;
    const cached = cacheDir ? join(cacheDir, `${key}.json`) : undefined;
    if (cached && existsSync(cached)) {
        const state = JSON.parse(readFileSync(cached, "utf8")) as Record<string, unknown>;
        memo.set(key, state);
        return state;
    }
    const state = compute(type, inputs);
    memo.set(key, state);
    if (cacheDir && cached) {
        mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
        writeFileSync(cached, JSON.stringify(state), { mode: 0o600 });
    }
    return state;
}
