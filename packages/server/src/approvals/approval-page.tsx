import { renderPage } from '../web/layout.tsx';
import { ArgumentsRow, DecisionForms, RequestTable, type DecisionPageView } from './decision-page.tsx';
import type { Approval } from './service.ts';

/** The arguments of a request as the person reads them: pretty JSON or the body's text. */
export interface ReadableArguments {
  text: string;
  truncated: boolean;
  json: boolean;
  totalBytes: number;
}

export interface ApprovalView extends DecisionPageView {
  approval: Approval;
  actionDescription: string;
  /** Readable request body, or undefined when this server no longer has it. */
  body: ReadableArguments | undefined;
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
      <RequestTable id="approval" view={view} expiresAt={Number(approval.expires_at)} expired={expired}>
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
        <ArgumentsRow id="body">
          <ArgumentsView arguments={view.body} />
        </ArgumentsRow>
      </RequestTable>

      <DecisionForms view={view} path={`/approvals/${approval.id}`} statusText={STATUS_TEXT[approval.status]} expired={expired} decidable={decidable} />
    </>,
  );
}

/** Shows request arguments, or a message that they are lost and what the person should do instead. */
export function ArgumentsView(props: { arguments: ReadableArguments | undefined }) {
  const body = props.arguments;
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
