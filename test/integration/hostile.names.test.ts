/**
 * Names are anyone's input: whoever may create a service connection names it. A connection named
 * with Slack mentions and links, Teams markdown links, HTML and terminal escape sequences goes
 * through a real scan of the sandbox (default scenario, real SDK clients), then to every webhook
 * format (the local HTTPS receiver) and to the CLI's human and JSON output. Nothing of it acts as
 * markup or as a control sequence anywhere; the name still reads as it was written.
 */
import MarkdownIt from 'markdown-it';

type Markdown = InstanceType<typeof MarkdownIt>;
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { runCli } from '../../src/cli/main';
import {
  createWebhookNotifier,
  runNotification,
  type Notification,
  type WebhookFormat,
} from '../../src/clients/notifier';
import { withoutControls } from '../../src/escaping';
import type { RunReport } from '../../src/remediation/report';
import { runRemediation } from '../../src/remediation/run';
import { silentLogger } from '../../src/telemetry';
import { engineFor, scenarioCases, type ScenarioCase } from '../helpers/engineSandbox';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookServer';
import { collector } from '../helpers/collector';

jest.setTimeout(120_000);

/** Slack mentions and links, Teams/markdown links and emphasis, HTML, OSC 8 hyperlinks, CSI, 8-bit CSI, RTL override, a fake line. */
const HOSTILE =
  'prod <!channel> <https://evil.example/login|Sign in again> [Sign in again](https://evil.example/x) ' +
  '**urgent** _now_ `code` <b>bold</b> <img src=x onerror=alert(1)> &amp; ' +
  '\u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007 \u001b[2J\u001b[31mred\u009b0m \u202eevil\u202c ' +
  '\r\n  • contoso/fake-connection: succeeded';
const VISIBLE = withoutControls(HOSTILE);
// Every C0/C1 control, DEL, and the bidi controls; a CLI line break is the only one allowed.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let sandbox: Sandbox;
let receiver: WebhookReceiver;
let target: ScenarioCase;
let report: RunReport;
let notification: Notification;

beforeAll(async () => {
  [sandbox, receiver] = await Promise.all([
    startSandbox({ scenario: 'default', seed: 'hostile-names' }),
    startWebhookReceiver('whk-T0ken-hostile-0123456789'),
  ]);
  // A connection that needs a person (its app is gone): it is named in every notification.
  target = scenarioCases(sandbox).get('app-deleted')!;
  target.endpoint.name = HOSTILE;
  const engine = engineFor(sandbox, silentLogger);
  report = (await runRemediation(engine.deps, engine.settings, { dryRun: true })).report;
  notification = runNotification(report)!;
}, 120_000);

afterAll(async () => {
  await Promise.all([sandbox?.stop(), receiver?.close()]);
});

test('the scan reports the name as Azure DevOps returned it', () => {
  const entry = report.connections.find((c) => c.connectionId === target.connectionId);
  expect(entry?.connectionName).toBe(HOSTILE);
  expect(notification.items.map((i) => i.title)).toContainEqual(expect.stringContaining(HOSTILE));
});

async function send(format: WebhookFormat): Promise<unknown> {
  receiver.received.length = 0;
  const result = await createWebhookNotifier(receiver.url, { format }).notify(notification);
  expect(result).toMatchObject({ ok: true });
  expect(receiver.received).toHaveLength(1);
  return JSON.parse(receiver.received[0]!.body) as unknown;
}

/** Markdown the way a CommonMark renderer reads it: the tokens of one text. */
function inlineTokens(md: Markdown, text: string) {
  return md.parseInline(text, {}).flatMap((t) => t.children ?? []);
}

/** What a reader sees of a markdown text: its text, entities decoded, no markup. */
function readable(md: Markdown, text: string): string {
  return inlineTokens(md, text)
    .map((t) =>
      t.type === 'text' || t.type === 'code_inline' ? t.content : t.type === 'softbreak' ? '\n' : '',
    )
    .join('');
}

/** The hostile item's line: only the bold this product adds is markup; the name reads as written. */
function expectInertMarkdown(md: Markdown, text: string): void {
  expect(text).not.toMatch(CONTROL);
  const tokens = inlineTokens(md, text).map((t) => t.type);
  expect(tokens).not.toContain('link_open');
  expect(tokens).not.toContain('html_inline');
  expect(tokens).not.toContain('image');
  expect(tokens).not.toContain('em_open');
  expect(tokens).not.toContain('code_inline');
  expect(tokens.filter((t) => t === 'strong_open')).toHaveLength(1);
  expect(readable(md, text)).toContain(VISIBLE);
}

test('Slack: no mention, link or markup survives; the name reads as written', async () => {
  const body = (await send('slack')) as { text: string };
  expect(body.text).not.toMatch(CONTROL);
  // Slack's control characters are only ever entities: no <!channel>, no <url|text>.
  expect(body.text).not.toMatch(/[<>]/);
  expect(body.text).toContain('&lt;!channel&gt;');
  const line = body.text.split('\n').find((l) => l.includes('!channel'))!;
  // Decoded as Slack does (only &amp; &lt; &gt;), the line shows the name as written.
  expect(line.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')).toContain(VISIBLE);
  // The fake line inside the name stays on the name's line.
  expect(body.text.split('\n').filter((l) => l.includes('fake-connection'))).toEqual([line]);
});

test('Teams MessageCard (markdown and limited HTML): no link, HTML or emphasis from the name', async () => {
  const body = (await send('teams-messagecard')) as { sections: { text?: string }[]; summary: string };
  const md = new MarkdownIt({ html: true });
  const text = body.sections.map((s) => s.text ?? '').join('\n\n');
  const line = text.split('\n\n').find((l) => l.includes('!channel'))!;
  expectInertMarkdown(md, line);
  expect(JSON.stringify(body)).not.toMatch(CONTROL);
});

test('Teams Workflows Adaptive Card (markdown, no HTML): no link or emphasis from the name', async () => {
  const body = (await send('teams-adaptive')) as {
    attachments: { content: { body: { type: string; text?: string }[] } }[];
  };
  const md = new MarkdownIt({ html: false });
  const blocks = body.attachments[0]!.content.body.filter((b) => b.type === 'TextBlock' && b.text);
  const line = blocks.map((b) => b.text!).find((t) => t.includes('!channel'))!;
  expectInertMarkdown(md, line);
  expect(JSON.stringify(body)).not.toMatch(CONTROL);
});

test('generic JSON: the name as data, exactly as written', async () => {
  const body = (await send('generic')) as { items: { title: string }[] };
  expect(body.items.map((i) => i.title)).toContainEqual(expect.stringContaining(VISIBLE));
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = collector();
  const err = collector();
  const code = await runCli(args, {
    stdout: out.stream,
    stderr: err.stream as unknown as NodeJS.WriteStream,
    env: { ...sandbox.env },
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

test('CLI: no escape sequence or control character reaches the terminal; the name reads as written', async () => {
  const human = await cli(['scan']);
  expect(human.stdout).toContain('!channel');
  expect(human.stdout).not.toMatch(CONTROL);
  expect(human.stderr).not.toMatch(CONTROL);
  // The "Needs a person" list: the name on its own entry's line, no fake entry of its own.
  const entry = human.stdout
    .split('\n')
    .find((l) => l.includes('<!channel>') && l.trimStart().startsWith('•'));
  expect(entry).toContain(`"${VISIBLE}"`);
  expect(human.stdout.split('\n').filter((l) => l.includes('• contoso/fake-connection'))).toEqual([entry]);

  const json = await cli(['scan', '--json']);
  expect(json.stdout).not.toMatch(CONTROL);
  // As data, the name is kept exactly (controls as JSON escapes).
  const parsed = JSON.parse(json.stdout) as RunReport;
  expect(parsed.connections.find((c) => c.connectionId === target.connectionId)?.connectionName).toBe(
    HOSTILE,
  );
});
