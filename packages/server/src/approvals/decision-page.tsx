import type { ComponentChildren } from 'preact';
import { CsrfField } from '../web/layout.tsx';

/**
 * What every page on which the person decides a request shows besides the request itself: the
 * approval page of a gateway call and the approval page of a CIBA request.
 */
export interface DecisionPageView {
  agentName: string;
  /** Agents that handed the token on to the agent, the nearest first; empty when the person delegated to it directly. */
  delegatingAgentNames?: string[] | undefined;
  /** The person the agent acts for, who is also the signed-in person. */
  personName: string;
  resourceName: string;
  resourceIdentifier: string;
  now: number;
  csrfToken: string;
  /** Whether approving will first ask the person to sign in again. */
  needsFreshSignIn: boolean;
  /** Maximum sign-in age for approving, in seconds. */
  maxAuthAgeSeconds: number;
}

/**
 * Renders the table of a request: the agent, the person and the resource, then the rows that
 * describe the request itself (`children`), then when the request expires.
 */
export function RequestTable(props: { id: string; view: DecisionPageView; expiresAt: number; expired: boolean; children: ComponentChildren }) {
  const { view } = props;
  return (
    <table id={props.id}>
      <tbody>
        <tr>
          <th>Agent</th>
          <td id="agent">{view.agentName}</td>
        </tr>
        {view.delegatingAgentNames === undefined || view.delegatingAgentNames.length === 0 ? null : (
          <tr>
            <th>Token handed on by</th>
            <td id="delegating-agents">{view.delegatingAgentNames.join(', which got it from ')}</td>
          </tr>
        )}
        <tr>
          <th>On behalf of</th>
          <td id="person">{view.personName}</td>
        </tr>
        <tr>
          <th>Resource</th>
          <td id="resource">
            {view.resourceName} (<code>{view.resourceIdentifier}</code>)
          </td>
        </tr>
        {props.children}
        <tr>
          <th>Expires</th>
          <td id="expires">{`${new Date(props.expiresAt * 1000).toISOString()} (${props.expired ? 'expired' : `in ${Math.max(0, props.expiresAt - view.now)} seconds`})`}</td>
        </tr>
      </tbody>
    </table>
  );
}

/** Renders the row of the arguments that approving allows; `id` names the cell for the page's tests and styles. */
export function ArgumentsRow(props: { id: string; children: ComponentChildren }) {
  return (
    <tr>
      <th>Arguments</th>
      <td id={props.id}>{props.children}</td>
    </tr>
  );
}

/**
 * Renders the request's status and, while the person can still decide, the Approve and Deny
 * forms. They post to `<path>/approve` and `<path>/deny` with the page's CSRF token. With
 * `approveUnavailable`, the page shows that message in place of the Approve form and offers
 * only Deny. The route must reject approving too, because hiding the button does not stop a direct POST.
 */
export function DecisionForms(props: { view: DecisionPageView; path: string; statusText: string; expired: boolean; decidable: boolean; approveUnavailable?: string | undefined }) {
  const { view } = props;
  const approvable = props.approveUnavailable === undefined;
  return (
    <>
      <p id="status" class="notice">
        {props.expired ? 'This request has expired; the agent must ask again.' : props.statusText}
      </p>

      {props.decidable ? (
        <>
          {approvable ? null : (
            <p id="approve-unavailable" class="error">
              {props.approveUnavailable}
            </p>
          )}
          {approvable && view.needsFreshSignIn ? <p id="fresh-sign-in" class="notice">{`Approving asks for your password again, because you signed in more than ${describeDuration(view.maxAuthAgeSeconds)} ago.`}</p> : null}
          <div class="actions">
            {approvable ? (
              <form method="post" action={`${props.path}/approve`}>
                <CsrfField token={view.csrfToken} />
                <button type="submit" id="approve">
                  Approve
                </button>
              </form>
            ) : null}
            <form method="post" action={`${props.path}/deny`}>
              <CsrfField token={view.csrfToken} />
              <button type="submit" id="deny" class="danger">
                Deny
              </button>
            </form>
          </div>
        </>
      ) : null}
    </>
  );
}

/** Describes a number of seconds in whole minutes when it has no remainder, for the pages' notices. */
export function describeDuration(seconds: number): string {
  if (seconds % 60 !== 0) return `${seconds} seconds`;
  const minutes = seconds / 60;
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}
