const UNIT: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** Seconds in a duration as the pglease CLI writes them: `90s`, `10m`, `1h`, `1h30m`, or plain seconds. */
export function parseDuration(text: string | number): number {
  if (typeof text === "number") return text;
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  if (/^(\d+(\.\d+)?[hms])+$/.test(value)) {
    let seconds = 0;
    for (const [, number, unit] of value.matchAll(/(\d+(?:\.\d+)?)([hms])/g)) {
      seconds += Number(number) * UNIT[unit!]!;
    }
    return seconds;
  }
  throw new RangeError(`not a duration: ${JSON.stringify(text)} (use e.g. 90s, 10m, 1h, 1h30m or seconds)`);
}
