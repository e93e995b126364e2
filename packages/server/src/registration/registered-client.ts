/**
 * The stored name of a self-registered client: the name it gave itself, followed by its client_id.
 * Client names are unique in a tenant, and a client must not take an existing agent's name just by
 * asking for it; an administrator names it when making it an agent.
 */
export function registeredClientName(clientName: string | undefined, clientId: string): string {
  return `${clientName ?? 'Unnamed client'} (${clientId})`;
}
