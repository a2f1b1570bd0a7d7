import { isDeepStrictEqual } from "node:util";
import * as pulumi from "@pulumi/pulumi";

/**
 * The Pulumi engine's rules that unit-test mocks do not apply, written down once so the mock runner applies them
 * (see /work/shared/FACTS.md, "The Pulumi engine's rules that mocks do not apply"):
 *
 * - A resource is identified by its URN (type chain + name). A URN that appears is a create, one that goes away a
 *   delete, whatever the inputs.
 * - For every property in `ignoreChanges` the engine sends the OLD input, on an update and on a replacement alike:
 *   a replaced Linode boots from its original user-data, keys and image.
 * - A change of a replacing property (per the provider's schema) replaces the resource; `pulumi up --replace`
 *   replaces it whatever changed. A replaced resource gets a new id, so everything fed that id changes too.
 * - `remote.Command` runs its command on create and on every update (it has no `update` script here, so `create`
 *   runs again); a change of `triggers` replaces it (delete, then create: it runs).
 */

export type Operation = "create" | "update" | "replace" | "delete" | "same";

/** Inputs that replace the resource when they change, by resource type. Unlisted types update in place. */
const REPLACING_INPUTS: Readonly<Record<string, readonly string[] | "all">> = {
    // @pulumi/linode 5.1.1: these destroy the VM (FACTS.md). `region` is not in that list; a region move is a
    // migration we never ask for (a node's region is part of its identity), so it counts as replacing here.
    "linode:index/instance:Instance": [
        "metadatas",
        "image",
        "authorizedKeys",
        "rootPass",
        "firewallId",
        "stackscriptId",
        "stackscriptData",
        "backupId",
        "region",
    ],
    "linode:index/networkingIp:NetworkingIp": "all",
    "linode:index/placementGroup:PlacementGroup": ["region", "placementGroupType", "placementGroupPolicy"],
    "random:index/randomPassword:RandomPassword": "all",
    "tls:index/privateKey:PrivateKey": "all",
    // terraform-provider-tls: every input of a certificate or request replaces it (a new certificate), except
    // early_renewal_hours, which only moves when the next `up` re-issues it.
    "tls:index/certRequest:CertRequest": "all",
    "tls:index/selfSignedCert:SelfSignedCert": [
        "privateKeyPem",
        "subject",
        "validityPeriodHours",
        "allowedUses",
        "isCaCertificate",
        "dnsNames",
        "ipAddresses",
        "uris",
        "setSubjectKeyId",
        "setAuthorityKeyId",
    ],
    "tls:index/locallySignedCert:LocallySignedCert": [
        "certRequestPem",
        "caPrivateKeyPem",
        "caCertPem",
        "validityPeriodHours",
        "allowedUses",
        "isCaCertificate",
        "setSubjectKeyId",
    ],
    "command:remote:Command": ["triggers"],
};

/** Strips Pulumi's secret markers, keeping the values (for comparing and reading inputs). */
export function unwrapSecrets(value: unknown): unknown {
    if (pulumi.runtime.isRpcSecret(value)) return unwrapSecrets(pulumi.runtime.unwrapRpcSecret(value));
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value !== null && typeof value === "object")
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
    return value;
}

/** Top-level input keys whose values differ (secret markers ignored). */
export function changedInputs(before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].filter((k) => !isDeepStrictEqual(unwrapSecrets(before[k]), unwrapSecrets(after[k]))).sort();
}

/** `metadatas[0].userData` -> ["metadatas", 0, "userData"] (Pulumi's property path syntax, without quoting). */
function pathSegments(path: string): (string | number)[] {
    return path
        .replace(/\[(\d+)\]/g, ".$1")
        .split(".")
        .filter((s) => s !== "")
        .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function getPath(value: unknown, path: readonly (string | number)[]): unknown {
    let cur = value;
    for (const seg of path) {
        cur = pulumi.runtime.unwrapRpcSecret(cur);
        if (cur === null || typeof cur !== "object") return undefined;
        cur = (cur as Record<string | number, unknown>)[seg];
    }
    return cur;
}

/** A copy of `value` with the value at `path` replaced (or removed when `replacement` is undefined). */
function setPath(value: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
    if (path.length === 0) return replacement;
    const [head, ...rest] = path;
    const plain = pulumi.runtime.unwrapRpcSecret(value) as unknown;
    const wrap = (copy: unknown) =>
        pulumi.runtime.isRpcSecret(value) ? { ...(value as Record<string, unknown>), value: copy } : copy;
    if (Array.isArray(plain)) {
        const copy: unknown[] = [...(plain as unknown[])];
        copy[Number(head)] = setPath(copy[Number(head)], rest, replacement);
        return wrap(copy);
    }
    const copy: Record<string, unknown> = { ...(plain as Record<string, unknown> | undefined) };
    const next = setPath(copy[String(head)], rest, replacement);
    if (next === undefined) Reflect.deleteProperty(copy, String(head));
    else copy[String(head)] = next;
    return wrap(copy);
}

/** The inputs the engine sends for a resource that exists: the new ones, with the old value of every ignored path. */
export function inputsWithIgnoredKept(
    before: Readonly<Record<string, unknown>>,
    after: Readonly<Record<string, unknown>>,
    ignoreChanges: readonly string[],
): Record<string, unknown> {
    let out: unknown = { ...after };
    for (const path of ignoreChanges) {
        const segments = pathSegments(path);
        out = setPath(out, segments, getPath(before, segments));
    }
    return out as Record<string, unknown>;
}

/** What the engine does with a resource that existed before, given the inputs it will send. */
export function operationFor(type: string, changed: readonly string[], forceReplace: boolean): Operation {
    if (forceReplace) return "replace";
    if (changed.length === 0) return "same";
    const replacing = REPLACING_INPUTS[type] ?? [];
    if (replacing === "all" || changed.some((k) => replacing.includes(k))) return "replace";
    return "update";
}
