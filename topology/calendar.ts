/**
 * A checker for the part of systemd's calendar-event syntax (systemd.time(7), "CALENDAR EVENTS") that a backup
 * schedule needs: the shorthands (`daily`, `hourly`, ...) and `[weekdays] [[year-]month-day] hour:minute[:second]`
 * with `*`, numbers, `a..b` ranges, `,` lists and `/n` repetitions. Stricter than systemd (no time zones, no `~`
 * last-day syntax, no fractional seconds), never looser: tests/backup/calendar.test.ts runs every accepted and refused
 * example through `systemd-analyze calendar` as well.
 */

const SHORTHANDS = new Set([
    "minutely",
    "hourly",
    "daily",
    "monthly",
    "weekly",
    "yearly",
    "annually",
    "quarterly",
    "semiannually",
]);

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAY_NAMES = new Set([
    ...WEEKDAYS,
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
]);

/** One field: `*`, `*\/n`, or a comma list of `v`, `v..w`, `v/n` within [min, max]. */
function field(text: string, min: number, max: number, digits: number): boolean {
    const num = (s: string) => (new RegExp(`^\\d{1,${String(digits)}}$`).test(s) ? Number(s) : NaN);
    const inRange = (n: number) => Number.isInteger(n) && n >= min && n <= max;
    if (text === "*") return true;
    const star = /^\*\/(\d{1,4})$/.exec(text);
    if (star) return Number(star[1]) > 0;
    return text.split(",").every((part) => {
        const rep = /^(\d+)\/(\d{1,4})$/.exec(part);
        if (rep) return inRange(num(rep[1])) && Number(rep[2]) > 0;
        const range = /^(\d+)\.\.(\d+)$/.exec(part);
        if (range) return inRange(num(range[1])) && inRange(num(range[2])) && num(range[1]) <= num(range[2]);
        return inRange(num(part));
    });
}

function weekdays(text: string): boolean {
    return text.split(",").every((part) => {
        const ends = part.toLowerCase().split("..");
        if (ends.length > 2 || !ends.every((d) => WEEKDAY_NAMES.has(d))) return false;
        const [from, to] = ends.map((d) => WEEKDAYS.indexOf(d.slice(0, 3)));
        return ends.length === 1 || to >= from;
    });
}

function date(text: string): boolean {
    const parts = text.split("-");
    if (parts.length === 3)
        return field(parts[0], 1970, 2199, 4) && field(parts[1], 1, 12, 2) && field(parts[2], 1, 31, 2);
    if (parts.length === 2) return field(parts[0], 1, 12, 2) && field(parts[1], 1, 31, 2);
    return false;
}

function time(text: string): boolean {
    const parts = text.split(":");
    if (parts.length < 2 || parts.length > 3) return false;
    return field(parts[0], 0, 23, 2) && field(parts[1], 0, 59, 2) && (parts.length === 2 || field(parts[2], 0, 59, 2));
}

/** Is `text` a systemd calendar event this project accepts (see the module comment)? */
export function isCalendarEvent(text: string): boolean {
    const trimmed = text.trim();
    if (trimmed !== text || text === "") return false;
    if (SHORTHANDS.has(text)) return true;
    const words = text.split(" ");
    if (words.some((w) => w === "")) return false;
    let i = 0;
    if (/^[A-Za-z]/.test(words[i])) {
        if (!weekdays(words[i])) return false;
        i++;
    }
    const rest = words.slice(i);
    if (rest.length === 1) return time(rest[0]);
    if (rest.length === 2) return date(rest[0]) && time(rest[1]);
    return false;
}
