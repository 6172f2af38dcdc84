/**
 * The policy file (pure): its format, how it is parsed and checked, and which of its rules applies
 * to a connection. What the service then does with a connection is `decide` (policy.ts).
 *
 * Format (JSON, `REMEDIATION_POLICY` or the file `REMEDIATION_POLICY_FILE`): per organization,
 * project and connection-name pattern, what the service may do — `rotate` (the default),
 * `convert-to-wif`, `report-only` or `exclude`:
 *
 *   {
 *     "default": "rotate",
 *     "rules": [
 *       { "organization": "contoso", "project": "platform", "connection": "platform-*", "action": "convert-to-wif" },
 *       { "organization": "fabrikam", "action": "report-only" },
 *       { "connection": "*-legacy", "action": "exclude" }
 *     ]
 *   }
 *
 * Approvals (DESIGN invariant 8) entitle one connection to one app, by exact ids, for connections
 * that cannot prove they hold a credential of it (see entitlement.ts):
 *
 *   { "approvals": [{ "connectionId": "<guid>", "appId": "<guid>", "organization": "contoso" }] }
 *
 * A rule matches when each field it names matches (organization: name or URL; project: any project
 * the connection is shared with; connection: its name), case-insensitively, `*` and `?` as
 * wildcards. The first matching rule wins; no rule: `default` (itself `rotate` when absent). A
 * connection shared with several projects gets the most careful choice among its projects
 * (exclude > report-only > rotate > convert-to-wif): converting a shared connection changes it for
 * every project, so every project must allow it.
 */
import type { PolicyApproval } from './entitlement';
import { POLICY_CHOICES, type PolicyChoice } from './ports';
import { GUID } from '../guid';

export interface PolicyRule {
  organization?: string;
  project?: string;
  connection?: string;
  action: PolicyChoice;
}

export interface RemediationPolicy {
  default: PolicyChoice;
  rules: PolicyRule[];
  /** Connections an operator entitled to an app (DESIGN invariant 8): exact ids, no patterns. */
  approvals?: PolicyApproval[];
}

/** No policy: rotate everything, convert and retire nothing. */
export const DEFAULT_POLICY: RemediationPolicy = { default: 'rotate', rules: [] };

export interface PolicyDecision {
  choice: PolicyChoice;
  /** 1-based index of the rule that chose, when one did. */
  rule?: number;
  /** In words, for reasons in the report. */
  source: string;
}

const RULE_FIELDS = ['organization', 'project', 'connection', 'action'] as const;

/**
 * Parses and checks a policy document; every problem is listed (the caller reports them with the
 * other settings). Never echoes more than a field name and a short value.
 */
export function parsePolicy(text: string): { policy: RemediationPolicy } | { problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return {
      problems: [`is not valid JSON (${err instanceof Error ? err.message.slice(0, 120) : 'parse error'})`],
    };
  }
  const problems: string[] = [];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    return { problems: ['must be a JSON object with "rules" (and optionally "default")'] };
  const doc = raw as Record<string, unknown>;
  for (const key of Object.keys(doc))
    if (!['default', 'rules', 'approvals', '$schema', 'description'].includes(key))
      problems.push(`has an unknown property '${key.slice(0, 40)}'`);
  const isChoice = (v: unknown): v is PolicyChoice =>
    typeof v === 'string' && (POLICY_CHOICES as readonly string[]).includes(v);
  let def: PolicyChoice = 'rotate';
  if (doc['default'] !== undefined) {
    if (isChoice(doc['default'])) def = doc['default'];
    else problems.push(`"default" must be one of ${POLICY_CHOICES.join(', ')}`);
  }
  const rules: PolicyRule[] = [];
  const expected = RULE_FIELDS.join(', ');
  eachObject(doc['rules'] ?? [], 'rules', 'rule', RULE_FIELDS, expected, problems, (rule, where) => {
    if (!isChoice(rule['action'])) {
      problems.push(`${where}: "action" must be one of ${POLICY_CHOICES.join(', ')}`);
      return;
    }
    const out: PolicyRule = { action: rule['action'] };
    for (const field of ['organization', 'project', 'connection'] as const) {
      const v = rule[field];
      if (v === undefined) continue;
      if (typeof v !== 'string' || v.trim() === '' || v.length > 256)
        problems.push(`${where}: "${field}" must be a non-empty pattern of at most 256 characters`);
      else out[field] = v.trim();
    }
    rules.push(out);
  });
  const approvals = parseApprovals(doc['approvals'], problems);
  if (problems.length > 0) return { problems };
  return { policy: { default: def, rules, ...(approvals.length > 0 ? { approvals } : {}) } };
}

const APPROVAL_FIELDS = ['connectionId', 'appId', 'organization', 'by', 'note'] as const;

/**
 * `"approvals": [{ "connectionId": "<guid>", "appId": "<guid>", "organization"?: "<name or URL>" }]`:
 * an operator entitles one connection to one app. Both ids are required and exact, so an approval
 * never covers a connection edited to name another app.
 */
function parseApprovals(raw: unknown, problems: string[]): PolicyApproval[] {
  const out: PolicyApproval[] = [];
  const expected = 'connectionId, appId, organization';
  eachObject(raw, 'approvals', 'approval', APPROVAL_FIELDS, expected, problems, (a, where) => {
    const connectionId = a['connectionId'];
    const appId = a['appId'];
    const organization = a['organization'];
    if (typeof connectionId !== 'string' || !GUID.test(connectionId))
      problems.push(`${where}: "connectionId" must be a service connection id (a GUID)`);
    if (typeof appId !== 'string' || !GUID.test(appId))
      problems.push(`${where}: "appId" must be the app's client id (a GUID)`);
    if (organization !== undefined && (typeof organization !== 'string' || organization.trim() === ''))
      problems.push(`${where}: "organization" must be an organization name or URL`);
    if (
      typeof connectionId === 'string' &&
      GUID.test(connectionId) &&
      typeof appId === 'string' &&
      GUID.test(appId)
    )
      out.push({
        connectionId,
        appId,
        ...(typeof organization === 'string' && organization.trim() !== ''
          ? { organization: organization.trim() }
          : {}),
      });
  });
  return out;
}

/**
 * Visits each element of one of the document's lists (`"rules"`, `"approvals"`; absent: none) that
 * is an object, with where it stands (`rule 2`) for messages. A list that is not an array, an
 * element that is not an object and a property not in `fields` are problems.
 */
function eachObject(
  raw: unknown,
  list: string,
  noun: string,
  fields: readonly string[],
  expected: string,
  problems: string[],
  visit: (item: Record<string, unknown>, where: string) => void,
): void {
  if (raw === undefined) return;
  if (!Array.isArray(raw)) {
    problems.push(`"${list}" must be an array`);
    return;
  }
  raw.forEach((r: unknown, i) => {
    const where = `${noun} ${i + 1}`;
    if (!r || typeof r !== 'object' || Array.isArray(r)) {
      problems.push(`${where} must be an object`);
      return;
    }
    const item = r as Record<string, unknown>;
    for (const key of Object.keys(item))
      if (!fields.includes(key))
        problems.push(`${where} has an unknown property '${key.slice(0, 40)}' (expected ${expected})`);
    visit(item, where);
  });
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

/** Whether a name matches a policy pattern (`*`, `?`, case-insensitive, whole name). */
export function matchesPattern(pattern: string, value: string): boolean {
  return globToRegExp(pattern).test(value);
}

interface PolicySubject {
  organization: string;
  organizationUrl?: string;
  projects: string[];
  connectionName: string;
}

const CAREFULNESS: Record<PolicyChoice, number> = {
  exclude: 3,
  'report-only': 2,
  rotate: 1,
  'convert-to-wif': 0,
};

function resolveFor(
  policy: RemediationPolicy,
  s: PolicySubject,
  project: string | undefined,
): PolicyDecision {
  for (const [i, rule] of policy.rules.entries()) {
    const org = rule.organization;
    if (
      org !== undefined &&
      !matchesPattern(org, s.organization) &&
      !(
        s.organizationUrl !== undefined &&
        matchesPattern(org.replace(/\/+$/, ''), s.organizationUrl.replace(/\/+$/, ''))
      )
    )
      continue;
    if (rule.project !== undefined && (project === undefined || !matchesPattern(rule.project, project)))
      continue;
    if (rule.connection !== undefined && !matchesPattern(rule.connection, s.connectionName)) continue;
    return { choice: rule.action, rule: i + 1, source: `policy rule ${i + 1}` };
  }
  return policy === DEFAULT_POLICY
    ? { choice: 'rotate', source: 'the default (no policy)' }
    : { choice: policy.default, source: 'the policy default' };
}

/** The policy choice for one connection (see the file header for matching and shared connections). */
export function resolvePolicy(policy: RemediationPolicy, subject: PolicySubject): PolicyDecision {
  const projects = subject.projects.length > 0 ? subject.projects : [undefined];
  let chosen: PolicyDecision | undefined;
  for (const project of projects) {
    const d = resolveFor(policy, subject, project);
    if (!chosen || CAREFULNESS[d.choice] > CAREFULNESS[chosen.choice]) chosen = d;
  }
  return chosen ?? { choice: 'rotate', source: 'the default (no policy)' };
}
