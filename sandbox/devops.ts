// Placeholder: replaced by the real service implementation.
import type { SandboxContext } from './index';
import type { ServiceDefinition } from './server';

export function devopsService(_ctx: SandboxContext): ServiceDefinition {
  return {
    name: 'devops',
    mount: (app) => {
      app.use((_req, res) => {
        res.status(501).json({ error: 'not implemented' });
      });
    },
    formatError: (_status, code, message) => ({ error: { code, message } }),
  };
}
