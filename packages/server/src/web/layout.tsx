import type { ComponentChildren } from 'preact';
import { renderToString } from 'preact-render-to-string';

/** Wraps a page body in the shared document shell; preact escapes every interpolated value. */
export function Layout(props: { title: string; children: ComponentChildren }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${props.title} · Mandate`}</title>
        <link rel="stylesheet" href="/static/mandate.css" />
      </head>
      <body>
        <header class="brand">Mandate</header>
        <main>{props.children}</main>
      </body>
    </html>
  );
}

/** Renders a page to an HTML document string. */
export function renderPage(title: string, body: ComponentChildren): string {
  return `<!doctype html>${renderToString(<Layout title={title}>{body}</Layout>)}`;
}

/** The hidden CSRF field that every form carries. */
export function CsrfField(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}
