import { CsrfField, renderPage } from '../web/layout.tsx';
import type { Approval } from './service.ts';

export interface ApprovalView {
  approval: Approval;
  agentName: string;
  resourceName: string;
  resourceIdentifier: string;
  actionDescription: string;
  personName: string;
  /** Readable request body, or undefined when this server no longer has it. */
  body: { text: string; truncated: boolean; json: boolean; totalBytes: number } | undefined;
  now: number;
  csrfToken: string;
  /** Whether approving will first ask the person to sign in again. */
  needsFreshSignIn: boolean;
}

const STATUS_TEXT: Record<Approval['status'], string> = {
  pending: 'Waiting for your decision.',
  approved: 'You approved this request. The agent can now make this call once.',
  denied: 'You denied this request.',
  used: 'You approved this request and the agent has made the call.',
};

/** Renders the approval page: the exact request an agent wants to make for the person, and the decision buttons. */
export function renderApprovalPage(view: ApprovalView): string {
  const { approval } = view;
  const expired = approval.status === 'pending' && Number(approval.expires_at) <= view.now;
  const decidable = approval.status === 'pending' && !expired;

  return renderPage(
    'Approve a request',
    <>
      <h1>{`${view.agentName} asks to make a call for you`}</h1>
      <p>{`Signed in as ${view.personName}. Approving allows this one request, exactly as shown, once.`}</p>
      <table id="approval">
        <tbody>
          <tr>
            <th>Agent</th>
            <td id="agent">{view.agentName}</td>
          </tr>
          <tr>
            <th>Resource</th>
            <td id="resource">
              {view.resourceName} (<code>{view.resourceIdentifier}</code>)
            </td>
          </tr>
          <tr>
            <th>Action</th>
            <td id="action">
              <code>{approval.action}</code> {view.actionDescription}
            </td>
          </tr>
          <tr>
            <th>Request</th>
            <td id="request">
              <code>{`${approval.method} ${approval.path}`}</code>
            </td>
          </tr>
          <tr>
            <th>Body</th>
            <td id="body">{renderBody(view.body)}</td>
          </tr>
          <tr>
            <th>Expires</th>
            <td id="expires">{`${new Date(Number(approval.expires_at) * 1000).toISOString()} (${expired ? 'expired' : `in ${Math.max(0, Number(approval.expires_at) - view.now)} seconds`})`}</td>
          </tr>
        </tbody>
      </table>

      <p id="status" class="notice">
        {expired ? 'This request has expired; the agent must ask again.' : STATUS_TEXT[approval.status]}
      </p>

      {decidable ? (
        <>
          {view.needsFreshSignIn ? <p class="notice">Approving asks for your password again, because you signed in more than 15 minutes ago.</p> : null}
          <div class="actions">
            <form method="post" action={`/approvals/${approval.id}/approve`}>
              <CsrfField token={view.csrfToken} />
              <button type="submit" id="approve">
                Approve
              </button>
            </form>
            <form method="post" action={`/approvals/${approval.id}/deny`}>
              <CsrfField token={view.csrfToken} />
              <button type="submit" id="deny" class="danger">
                Deny
              </button>
            </form>
          </div>
        </>
      ) : null}
    </>,
  );
}

function renderBody(body: ApprovalView['body']) {
  if (body === undefined) return <p class="error">The request body is no longer available on this server. Deny the request unless you know what it contains.</p>;
  if (body.totalBytes === 0) return <em>(empty)</em>;
  return (
    <>
      <pre>{body.text}</pre>
      {body.truncated ? <p class="notice">{`Only the first part is shown; the whole body is ${body.totalBytes} bytes.`}</p> : null}
    </>
  );
}

/** Renders a short page for an approval that cannot be shown or decided. */
export function renderApprovalMessage(title: string, message: string): string {
  return renderPage(
    title,
    <>
      <h1>{title}</h1>
      <p class="error">{message}</p>
    </>,
  );
}
