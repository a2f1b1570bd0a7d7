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

/** What the shorthands stand for (systemd.time(7)). */
const SHORTHAND_FORMS: Readonly<Partial<Record<string, string>>> = {
    minutely: "*-*-* *:*:00",
    hourly: "*-*-* *:00:00",
    daily: "*-*-* 00:00:00",
    monthly: "*-*-01 00:00:00",
    weekly: "Mon *-*-* 00:00:00",
    yearly: "*-01-01 00:00:00",
    annually: "*-01-01 00:00:00",
    quarterly: "*-01,04,07,10-01 00:00:00",
    semiannually: "*-01,07-01 00:00:00",
};

/** The values of one field (already checked by `field`) within [min, max]. */
function values(text: string, min: number, max: number): Set<number> {
    const out = new Set<number>();
    const step = (from: number, by: number) => {
        for (let v = from; v <= max; v += by) out.add(v);
    };
    const star = /^\*\/(\d+)$/.exec(text);
    if (text === "*") step(min, 1);
    else if (star) step(min, Number(star[1]));
    else
        for (const part of text.split(",")) {
            const rep = /^(\d+)\/(\d+)$/.exec(part);
            const range = /^(\d+)\.\.(\d+)$/.exec(part);
            if (rep) step(Number(rep[1]), Number(rep[2]));
            else if (range) for (let v = Number(range[1]); v <= Number(range[2]); v++) out.add(v);
            else out.add(Number(part));
        }
    return out;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * The longest time between two consecutive runs of an accepted calendar event (see `isCalendarEvent`), in seconds,
 * over four years from `from` (every weekday, month length and a leap year), to the minute (a schedule that runs
 * several times within a minute counts as once a minute). Undefined when it runs fewer than twice in that time (a
 * fixed date). What "a backup is overdue" means: the alert waits twice this.
 */
export function calendarMaxGapSec(text: string, from = Date.UTC(2027, 0, 1)): number | undefined {
    if (!isCalendarEvent(text)) return undefined;
    const words = (SHORTHAND_FORMS[text] ?? text).split(" ");
    const days = /^[A-Za-z]/.test(words[0]) ? words.shift() : undefined;
    const dateText = words.length === 2 ? (words.shift() ?? "") : "*-*-*";
    const [hourText, minuteText] = (words[0] ?? "").split(":");
    const weekdaySet = new Set<number>();
    for (const part of (days ?? "mon..sun").toLowerCase().split(",")) {
        const ends = part.split("..").map((d) => WEEKDAYS.indexOf(d.slice(0, 3)));
        for (let d = ends[0]; d <= ends[ends.length - 1]; d++) weekdaySet.add((d + 1) % 7); // JavaScript's getUTCDay: Sunday is 0
    }
    const dateParts = dateText.split("-");
    const [yearText, monthText, dayText] = dateParts.length === 3 ? dateParts : ["*", ...dateParts];
    const years = values(yearText, 1970, 2199);
    const months = values(monthText, 1, 12);
    const monthDays = values(dayText, 1, 31);
    const minutesOfDay = [...values(hourText, 0, 23)]
        .flatMap((h) => [...values(minuteText, 0, 59)].map((m) => h * 60 + m))
        .sort((a, b) => a - b);
    let last: number | undefined;
    let widest = 0;
    for (let day = from; day < from + 4 * 366 * DAY_MS; day += DAY_MS) {
        const d = new Date(day);
        if (
            !years.has(d.getUTCFullYear()) ||
            !months.has(d.getUTCMonth() + 1) ||
            !monthDays.has(d.getUTCDate()) ||
            !weekdaySet.has(d.getUTCDay())
        )
            continue;
        for (const m of minutesOfDay) {
            const at = day + m * MINUTE_MS;
            if (last !== undefined) widest = Math.max(widest, at - last);
            last = at;
        }
    }
    return widest > 0 ? widest / 1000 : undefined;
}
