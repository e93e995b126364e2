import type { ResourceAction } from '../resources/registry.ts';
import { CsrfField, renderPage } from './layout.tsx';

export interface ConsentView {
  agentName: string;
  agentKind: string;
  personName: string;
  resourceName: string;
  resourceIdentifier: string;
  actions: ResourceAction[];
  /** Requested scopes that the person's or the agent's roles do not allow; they will not be granted. */
  refused: string[];
  /** The authorization request parameters, posted back unchanged with the decision. */
  params: Record<string, string>;
  /** CSRF token of the consent form for the signed-in session (identity/session-csrf.ts). */
  csrfToken: string;
}

/** Renders the consent page, which names the agent, the resource and every scope before anything is delegated. */
export function renderConsentPage(view: ConsentView): string {
  return renderPage(
    'Allow access',
    <>
      <h1>{`Allow ${view.agentName} to act for you?`}</h1>
      <p>
        {`Signed in as ${view.personName}. The ${view.agentKind} `}
        <strong>{view.agentName}</strong> asks to use <strong>{view.resourceName}</strong> (<code>{view.resourceIdentifier}</code>) on your behalf with these permissions:
      </p>
      <ul class="scopes" id="scopes">
        {view.actions.map((action) => (
          <li>
            <code>{action.name}</code> {action.description}
            {action.requires_approval === 1 ? ' (each use waits for your approval)' : ''}
          </li>
        ))}
      </ul>
      {view.refused.length > 0 ? <p class="notice">{`Not granted, because your roles or the agent's do not allow it: ${view.refused.join(', ')}.`}</p> : null}
      <p>You can revoke this at any time under My delegations.</p>
      <form method="post" action="/authorize/consent">
        <CsrfField token={view.csrfToken} />
        {Object.entries(view.params).map(([name, value]) => (
          <input type="hidden" name={name} value={value} />
        ))}
        <div class="actions">
          <button type="submit" name="decision" value="allow" id="allow">
            Allow
          </button>
          <button type="submit" name="decision" value="deny" class="secondary" id="deny">
            Deny
          </button>
        </div>
      </form>
    </>,
  );
}

/** A page for authorization errors that must not be redirected to the client. */
export function renderAuthorizationErrorPage(message: string): string {
  return renderPage(
    'Authorization error',
    <>
      <h1>This authorization request cannot be completed</h1>
      <p class="error">{message}</p>
      <p>Return to the application and try again, or contact its administrator.</p>
    </>,
  );
}
