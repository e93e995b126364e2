import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { conflict } from '../http/problem.ts';
import { createClient } from '../agents/clients.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

export const bootstrapInput = z.strictObject({ name: z.string().trim().min(1).max(100).default('admin') });

export interface BootstrapResult {
  client_id: string;
  /** Returned once; only its SHA-256 digest is stored. */
  client_secret: string;
  name: string;
}

/**
 * Creates the first admin client (client_secret_basic) of a new deployment. Rejects the call when
 * an admin client exists already, so a second run cannot mint another credential unnoticed.
 */
export async function bootstrapAdminClient(ctx: Ctx, input: unknown, actor: string): Promise<BootstrapResult> {
  const { name } = parseInput(bootstrapInput, input ?? {});

  return rejectDuplicates(`A client named ${name} already exists.`, () =>
    auditedTransaction(ctx, async (trx) => {
      const existing = await trx.selectFrom('clients').select('client_id').where('tenant_id', '=', ctx.tenantId).where('kind', '=', 'admin').executeTakeFirst();
      if (existing !== undefined) {
        throw conflict(`An admin client already exists (${existing.client_id}); init runs only once. Use that client's credentials to obtain admin tokens.`);
      }

      const { client, clientSecret } = await createClient({ db: trx, tenantId: ctx.tenantId }, { kind: 'admin', name });
      if (clientSecret === undefined) throw new Error('An admin client without a JWK Set must get a generated secret.');

      const event = { event: 'client.created', actor, agent: client.client_id, target: { kind: 'admin', name }, outcome: { result: 'created' } };
      return { result: { client_id: client.client_id, client_secret: clientSecret, name }, events: [event] };
    }),
  );
}
