/**
 * A policy's configuration with its schema defaults applied. The CLI fills in schema defaults before it configures
 * the pack, but a pack run without configuration (tests, `npm run review`) gets `{}`: the defaults live here once
 * and the schema reuses them.
 */
export function withDefaults<T extends object>(given: Partial<T>, defaults: T): T {
    const out = { ...defaults };
    for (const [k, v] of Object.entries(given)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    return out;
}
