/**
 * Does a Linode firewall rule's `ports` cover `port`? Linode takes a comma-separated list of ports and ranges
 * ("22", "6379,26379", "1-65535"); a TCP or UDP rule without ports covers every port.
 */
export function portsCover(spec: string | undefined, port: number): boolean {
    if (spec === undefined || spec.trim() === "") return true;
    return spec.split(",").some((part) => {
        const bounds = part.split("-").map((p) => Number(p.trim()));
        return bounds.length === 1 ? bounds[0] === port : bounds[0] <= port && port <= bounds[1];
    });
}
