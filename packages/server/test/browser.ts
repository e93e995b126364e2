import { createServer, type Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium, headless, with the flags this sandbox needs (no background network calls). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/** Fills in and submits the real sign-in page, and waits until the browser has left it. */
export async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL((url) => url.pathname !== '/login'), page.click('#sign-in')]);
}

/** A loopback server standing in for the client's redirect endpoint; it records each callback URL. */
export interface CallbackServer {
  url: string;
  next(): Promise<URL>;
  close(): Promise<void>;
}

export async function startCallbackServer(): Promise<CallbackServer> {
  const waiting: Array<(url: URL) => void> = [];
  const received: URL[] = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    response.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.');
    // Browsers also ask for /favicon.ico; only the redirect endpoint counts.
    if (url.pathname !== '/callback') return;
    const resolve = waiting.shift();
    if (resolve === undefined) received.push(url);
    else resolve(url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const base = `http://127.0.0.1:${port}/callback`;

  return {
    url: base,
    next: () => {
      const ready = received.shift();
      if (ready !== undefined) return Promise.resolve(new URL(ready.pathname + ready.search, base));
      return new Promise((resolve) => waiting.push((url) => resolve(new URL(url.pathname + url.search, base))));
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
