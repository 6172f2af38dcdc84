/**
 * A local HTTPS webhook receiver (certificate from the sandbox's development CA, trusted through
 * NODE_EXTRA_CA_CERTS) that records what it is sent and can misbehave on demand.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ensureDevCa, issueServerCertificate } from '../../sandbox/tls';

export type WebhookBehaviour = 'ok' | 'error' | 'reset' | 'hang';

export interface WebhookReceiver {
  /** `https://127.0.0.1:<port>/hook/<token>`: the token makes the URL a secret, as real ones are. */
  url: string;
  token: string;
  received: { path: string; headers: Record<string, string | string[] | undefined>; body: string }[];
  behaviour: WebhookBehaviour;
  close(): Promise<void>;
}

export async function startWebhookReceiver(token = 'whk-T0ken-9f8e7d6c5b4a'): Promise<WebhookReceiver> {
  const tls = await issueServerCertificate(await ensureDevCa());
  const receiver: WebhookReceiver = {
    url: '',
    token,
    received: [],
    behaviour: 'ok',
    close: () => Promise.resolve(),
  };
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      switch (receiver.behaviour) {
        case 'ok':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('1');
          return;
        case 'error':
          res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
          return;
        case 'reset':
          req.socket.destroy();
          return;
        case 'hang':
          return; // never answers
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  receiver.url = `https://127.0.0.1:${port}/hook/${token}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}
