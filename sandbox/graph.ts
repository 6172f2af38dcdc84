// Placeholder: replaced by the real service implementation.
import type { SandboxContext } from './index';
import type { ServiceDefinition } from './server';

export function graphService(_ctx: SandboxContext): ServiceDefinition {
  return {
    name: 'graph',
    mount: (app) => {
      app.use((_req, res) => {
        res.status(501).json({ error: 'not implemented' });
      });
    },
    formatError: (_status, code, message) => ({ error: { code, message } }),
  };
}
