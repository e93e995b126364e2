/**
 * Builds the stored name of a self-registered client: the name it gave itself, then its client_id.
 * Client names are unique in a tenant, and a client must not take an existing agent's name by
 * requesting it. An administrator names it when making it an agent.
 */
export function registeredClientName(clientName: string | undefined, clientId: string): string {
  return `${clientName ?? 'Unnamed client'} (${clientId})`;
}
