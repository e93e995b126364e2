import type { FastifyInstance } from 'fastify';

const STYLESHEET = `
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1c2330; }
.brand { background: #1c2330; color: #fff; padding: 0.75rem 1.5rem; font-weight: 600; letter-spacing: 0.02em; }
main { max-width: 40rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; margin: 0.75rem 0 0.25rem; font-weight: 500; }
input[type=text], input[type=password] { width: 100%; padding: 0.5rem; box-sizing: border-box; border: 1px solid #c5cad3; border-radius: 4px; }
button { margin-top: 1rem; padding: 0.5rem 1.2rem; border: 0; border-radius: 4px; background: #2456d6; color: #fff; font-size: 1rem; cursor: pointer; }
button.secondary { background: #e4e7ec; color: #1c2330; }
button.danger { background: #c22f2f; }
.error { color: #a11d1d; background: #fdecec; padding: 0.5rem 0.75rem; border-radius: 4px; }
.notice { background: #eef3ff; padding: 0.5rem 0.75rem; border-radius: 4px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 0.4rem; border-bottom: 1px solid #e4e7ec; vertical-align: top; }
code, pre { background: #f0f2f5; padding: 0.1rem 0.3rem; border-radius: 3px; }
pre { padding: 0.6rem; overflow-x: auto; }
ul.scopes li { margin: 0.25rem 0; }
.actions { display: flex; gap: 0.75rem; }
`;

export function registerStaticRoutes(app: FastifyInstance): void {
  app.get('/static/mandate.css', (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET));
}
