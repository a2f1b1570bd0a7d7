import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A private CA and one certificate for 127.0.0.1 signed by it (PEM files in a directory), as the lab's nodes get. */
export interface LoopbackCertificates {
    readonly caFile: string;
    readonly certFile: string;
    readonly keyFile: string;
    /** The CA certificate, for a client's `tls: { ca }`. */
    readonly caPem: string;
}

function openssl(args: string[], dir: string): void {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args[0] ?? ""} failed: ${r.stderr.trim()}`);
}

/**
 * Makes the CA and the node certificate in `dir` with OpenSSL: P-256 keys (what the program's @pulumi/tls keys are),
 * the node certificate for server and client use with the IP SAN 127.0.0.1, so Node's TLS checks pass for the address
 * Sentinel hands out, and so Redis can present it when it connects as a replica or as Sentinel.
 */
export function makeLoopbackCertificates(dir: string): LoopbackCertificates {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        [
            "req",
            "-x509",
            ...ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=redis-ha loopback CA",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    );
    openssl(["req", "-new", ...ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=127.0.0.1"], dir);
    const ext = join(dir, "node.ext");
    writeFileSync(
        ext,
        "subjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    openssl(
        [
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            ext,
            "-out",
            "node.crt",
        ],
        dir,
    );
    return {
        caFile: join(dir, "ca.crt"),
        certFile: join(dir, "node.crt"),
        keyFile: join(dir, "node.key"),
        caPem: readFileSync(join(dir, "ca.crt"), "utf8"),
    };
}
