import { startTestServer, type TestServer } from '../harness.ts';
import { createWorld, delegatedToken, startUpstream, type Upstream, type World } from './world.ts';

/** A test server and an upstream with one world on them (see `createWorld`), and the agent's delegated token for it. */
export interface GatewayFixture {
  server: TestServer;
  upstream: Upstream;
  world: World;
  /** A delegated token with every scope of the world's resource. */
  token: string;
  /** Closes the upstream, then stops the server. */
  stop(): Promise<void>;
}

/** Starts the server and the upstream, creates the world and obtains the delegated token. */
export async function startGatewayFixture(): Promise<GatewayFixture> {
  const server = await startTestServer();
  const upstream = await startUpstream();
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const stop = async () => {
    await upstream.close();
    await server.stop();
  };
  return { server, upstream, world, token, stop };
}
