import path from "node:path";
import { InvalidNodeNameError } from "./errors";

/**
 * Names and places the lab owns. Everything the lab creates on the host is
 * either under STATE_ROOT or carries the PREFIX, so teardown can find all of
 * it after a crash without a registry, and never touches anything else.
 */

export const PREFIX = "rhl-";

/** Lab state lives outside the work tree: images are big and must survive re-clones. */
export const STATE_ROOT = process.env.RHL_LAB_STATE_DIR ?? "/var/lib/redis-ha-lab";
export const IMAGES_DIR = path.join(STATE_ROOT, "images");
export const NODES_DIR = path.join(STATE_ROOT, "nodes");
export const NETWORK_STATE_FILE = path.join(STATE_ROOT, "network.json");

/**
 * Node names become hostnames, netns names (`rhl-<name>`) and nspawn machine
 * names, so they follow hostname rules: the same shape Linode labels and the
 * topology model use, lower-case to keep one spelling per node.
 */
const NODE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;

export function assertNodeName(name: string): void {
    if (!NODE_NAME.test(name)) throw new InvalidNodeNameError(name);
}

export function nodeDir(name: string): string {
    assertNodeName(name);
    return path.join(NODES_DIR, name);
}

/** The netns and nspawn machine name of a node. */
export function nodeNetns(name: string): string {
    assertNodeName(name);
    return `${PREFIX}${name}`;
}
