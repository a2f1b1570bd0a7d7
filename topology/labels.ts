/**
 * Linode labels and tags of the cluster's resources, built in one place so that validation checks exactly what the
 * components send.
 *
 * Linode's rules (API reference, `label` and `tags` of Linode instances, firewalls and placement groups): a label is
 * 3-64 characters of letters, digits and `-_.`, starts and ends with a letter or digit, and has no `--`, `__` or
 * `..`; a firewall label is at most 32 characters; a tag is at most 50 characters.
 */

export const LABEL_MIN = 3;
export const LABEL_MAX = 64;
export const FIREWALL_LABEL_MAX = 32;
export const TAG_MAX = 50;

/** Label of a node's Linode. */
export function nodeLabel(cluster: string, node: string): string {
    return `${cluster}-${node}`;
}

/** Label of a region's placement group. */
export function placementGroupLabel(cluster: string, region: string): string {
    return `${cluster}-${region}`;
}

/** Label of the cluster's Cloud Firewall. */
export function firewallLabel(cluster: string): string {
    return `${cluster}-fw`;
}

/** Tags the cluster's own resources (the firewall) carry. */
export function clusterTags(cluster: string): string[] {
    return ["redis-ha", `cluster:${cluster}`];
}

/** Tags of one node's Linode: the cluster's, its region and roles, then the stack's extra tags. */
export function nodeTags(
    cluster: string,
    region: string,
    roles: readonly string[],
    extra: readonly string[],
): string[] {
    return [...clusterTags(cluster), `region:${region}`, ...roles.map((r) => `role:${r}`), ...extra];
}

/** Why Linode would refuse `label`, or undefined if it accepts it. */
export function labelProblem(label: string, max = LABEL_MAX): string | undefined {
    const quoted = JSON.stringify(label);
    if (label.length < LABEL_MIN || label.length > max)
        return `makes the label ${quoted} (${String(label.length)} characters); Linode accepts ${String(LABEL_MIN)}-${String(max)}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$/.test(label))
        return `makes the label ${quoted}; Linode accepts only letters, digits and -_. and a letter or digit at each end`;
    const run = /--|__|\.\./.exec(label);
    if (run) return `makes the label ${quoted}, which Linode refuses because it contains "${run[0]}"`;
    return undefined;
}

/** Why Linode would refuse `tag`, or undefined if it accepts it. */
export function tagProblem(tag: string): string | undefined {
    return tag.length > TAG_MAX
        ? `makes the tag ${JSON.stringify(tag)} (${String(tag.length)} characters); Linode accepts at most ${String(TAG_MAX)}`
        : undefined;
}
