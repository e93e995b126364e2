import type { ComponentChildren } from 'preact';
import { CsrfField } from '../web/layout.tsx';

/**
 * What every page on which the person decides a request shows besides the request itself: the
 * approval page of a gateway call and the approval page of a CIBA request.
 */
export interface DecisionPageView {
  agentName: string;
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
 * forms. They post to `<path>/approve` and `<path>/deny` with the session's CSRF token.
 */
export function DecisionForms(props: { view: DecisionPageView; path: string; statusText: string; expired: boolean; decidable: boolean }) {
  const { view } = props;
  return (
    <>
      <p id="status" class="notice">
        {props.expired ? 'This request has expired; the agent must ask again.' : props.statusText}
      </p>

      {props.decidable ? (
        <>
          {view.needsFreshSignIn ? <p id="fresh-sign-in" class="notice">{`Approving asks for your password again, because you signed in more than ${describeDuration(view.maxAuthAgeSeconds)} ago.`}</p> : null}
          <div class="actions">
            <form method="post" action={`${props.path}/approve`}>
              <CsrfField token={view.csrfToken} />
              <button type="submit" id="approve">
                Approve
              </button>
            </form>
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
