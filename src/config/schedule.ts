/**
 * `REMEDIATION_SCHEDULE`: the timer trigger's NCRONTAB expression ("Timer trigger for Azure
 * Functions", https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions):
 * six fields, seconds first, or `%AppSetting%`. cron-parser checks each value, range and step;
 * this module adds what is Azure's own: the six-field shape, the TimeSpan form, and NCRONTAB's
 * smaller grammar (cron-parser also takes `?`, `L`, `#`, `H` and 7 for Sunday, which the Functions
 * host's NCrontab refuses, so they are refused here before cron-parser sees them).
 */
import { CronExpressionParser } from 'cron-parser';
import type { Check } from './checks';

/** The six NCRONTAB fields, in order, with the range NCrontab accepts. */
const FIELDS = [
  { field: 'second', min: 0, max: 59 },
  { field: 'minute', min: 0, max: 59 },
  { field: 'hour', min: 0, max: 23 },
  { field: 'day', min: 1, max: 31 },
  { field: 'month', min: 1, max: 12 },
  { field: 'day-of-week', min: 0, max: 6 },
] as const;

type Field = (typeof FIELDS)[number];

const SCHEDULE_EXPECTED =
  "a 6-field NCRONTAB expression '{second} {minute} {hour} {day} {month} {day-of-week}' (e.g. '0 0 2 * * *') or '%AppSettingName%'";

/** `*`, a value or a range, with an optional step: one item of a comma list. */
const ITEM = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/;
/** A number, or a three-letter month or day name (cron-parser resolves which). */
const BOUND = /^(\d+|[A-Za-z]{3})$/;

/** Why one item of `spec`'s field is invalid, or undefined when it is valid. */
function itemProblem(item: string, index: number, spec: Field): string | undefined {
  const m = ITEM.exec(item);
  if (!m) return `'${item}' is not a value, range, list or step`;
  const [, range = '', step] = m;
  const outside = `'${range}' is outside ${spec.min}-${spec.max}`;
  if (step !== undefined && Number(step) < 1) return `step '/${step}' must be at least 1`;
  if (range === '*') return undefined;
  const bounds = range.split('-');
  if (!bounds.every((b) => BOUND.test(b))) return outside;
  if (spec.field === 'day-of-week' && bounds.some((b) => /^\d+$/.test(b) && Number(b) === 7)) return outside;
  const error = cronParserError(item, index);
  if (error === undefined) return undefined;
  // A range cron-parser finds inverted is backwards only when both ends are valid on their own
  // (it checks the order first). It also expands `n/step` to `n-max`: a start past the end is out
  // of range, not backwards.
  if (
    /^Invalid range/.test(error) &&
    bounds.length === 2 &&
    bounds.every((b) => cronParserError(b, index) === undefined)
  )
    return `range '${range}' runs backwards`;
  return outside;
}

/**
 * cron-parser's objection to `item` alone in field `index` (`*` elsewhere), or undefined. Alone, so
 * that its day-of-month/month cross-check and its refusal of a value repeated across items, which
 * NCrontab has neither of, stay out of the way.
 */
function cronParserError(item: string, index: number): string | undefined {
  try {
    CronExpressionParser.parse(FIELDS.map((_, i) => (i === index ? item : '*')).join(' '));
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function parseSchedule(value: string | undefined, c: Check, def: string): string {
  if (value === undefined) return def;
  if (/^%[A-Za-z_][A-Za-z0-9_.:-]*%$/.test(value)) return value;
  if (/^\d{1,2}:\d{2}:\d{2}$/.test(value)) {
    c.fail(
      `'${value}' is a TimeSpan, which only works on App Service plans and not on Consumption/Flex plans`,
      SCHEDULE_EXPECTED,
    );
    return value;
  }
  const fields = value.split(/\s+/);
  if (fields.length !== 6) {
    c.fail(
      `'${value}' has ${fields.length} field${fields.length === 1 ? '' : 's'}${
        fields.length === 5 ? ' (a 5-field cron lacks the leading seconds field)' : ''
      }`,
      SCHEDULE_EXPECTED,
    );
    return value;
  }
  const problems = FIELDS.flatMap((spec, i) => {
    const items = (fields[i] ?? '').split(',');
    const problem = items.map((item) => itemProblem(item, i, spec)).find((p) => p !== undefined);
    return problem === undefined ? [] : [`${spec.field} field: ${problem}`];
  });
  if (problems.length > 0) c.fail(`'${value}' is invalid (${problems.join('; ')})`, SCHEDULE_EXPECTED);
  return fields.join(' ');
}
