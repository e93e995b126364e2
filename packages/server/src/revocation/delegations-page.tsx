import { CsrfField, renderPage } from '../web/layout.tsx';
import type { DelegationView } from './delegations.ts';

export interface DelegationsPageView {
  displayName: string;
  delegations: DelegationView[];
  /** CSRF token of the delegation revocation form for the signed-in session (identity/session-csrf.ts). */
  csrfToken: string;
  notice?: string | undefined;
}

function formatTime(seconds: number | null): string {
  return seconds === null ? 'never' : new Date(seconds * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

/** Renders the signed-in person's active delegations, each with a revoke button. */
export function renderDelegationsPage(view: DelegationsPageView): string {
  return renderPage(
    'My delegations',
    <>
      <h1>My delegations</h1>
      <p>{`Signed in as ${view.displayName}. These agents may act for you until you revoke them.`}</p>
      {view.notice === undefined ? null : (
        <p class="notice" role="status">
          {view.notice}
        </p>
      )}
      {view.delegations.length === 0 ? (
        <p id="no-delegations">You have no active delegations.</p>
      ) : (
        <table id="delegations">
          <thead>
            <tr>
              <th>Agent</th>
              <th>Resource</th>
              <th>Scopes</th>
              <th>Created</th>
              <th>Last used</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {view.delegations.map((delegation) => (
              <tr data-delegation-id={delegation.id}>
                <td>{delegation.agent_name}</td>
                <td>
                  {delegation.resource_display_name}
                  <br />
                  <code>{delegation.resource_identifier}</code>
                </td>
                <td>
                  <ul class="scopes">
                    {delegation.scope.split(' ').map((scope) => (
                      <li>
                        <code>{scope}</code>
                      </li>
                    ))}
                  </ul>
                </td>
                <td>{formatTime(delegation.created_at)}</td>
                <td>{formatTime(delegation.last_used_at)}</td>
                <td>
                  <form method="post" action={`/account/delegations/${encodeURIComponent(delegation.id)}/revoke`}>
                    <CsrfField token={view.csrfToken} />
                    <button type="submit" class="danger" aria-label={`Revoke ${delegation.agent_name} on ${delegation.resource_display_name}`}>
                      Revoke
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>,
  );
}
