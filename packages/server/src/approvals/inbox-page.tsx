import { renderPage } from '../web/layout.tsx';
import { ArgumentsView, type ReadableArguments } from './approval-page.tsx';
import { BackchannelInboxEntry, type BackchannelInboxItem } from './backchannel-page.tsx';

/** One pending gateway call in the person's inbox. */
export interface CallInboxItem {
  kind: 'call';
  id: string;
  agentName: string;
  resourceName: string;
  action: string;
  actionDescription: string;
  method: string;
  path: string;
  arguments: ReadableArguments | undefined;
  createdAt: number;
  /** Seconds until the approval expires. */
  expiresIn: number;
}

/** One entry of the inbox: a call waiting for approval, or a CIBA request asking for approval in advance. */
export type InboxItem = CallInboxItem | BackchannelInboxItem;

/** Renders the person's approvals inbox: every pending request in the given order, each linking to its approval page. */
export function renderApprovalInbox(view: { personName: string; items: InboxItem[] }): string {
  return renderPage(
    'Approvals',
    <>
      <h1>Requests waiting for your approval</h1>
      <p>{`Signed in as ${view.personName}. Open a request to see it in full and approve or deny it.`}</p>
      {view.items.length === 0 ? (
        <p id="empty" class="notice">
          No requests are waiting for your approval.
        </p>
      ) : (
        <ul id="approvals">
          {view.items.map((item) => (item.kind === 'backchannel' ? <BackchannelInboxEntry item={item} key={item.id} /> : <CallInboxEntry item={item} key={item.id} />))}
        </ul>
      )}
    </>,
  );
}

function CallInboxEntry(props: { item: CallInboxItem }) {
  const { item } = props;
  return (
    <li class="approval" id={`approval-${item.id}`}>
      <p>
        <a href={`/approvals/${item.id}`}>
          <strong class="agent">{item.agentName}</strong>
          {' asks to '}
          <code class="action">{item.action}</code>
          {' on '}
          <span class="resource">{item.resourceName}</span>
        </a>
      </p>
      {item.actionDescription === '' ? null : <p>{item.actionDescription}</p>}
      <p>
        <code class="request">{`${item.method} ${item.path}`}</code>
        {` · expires in ${item.expiresIn} seconds`}
      </p>
      <div class="arguments">
        <ArgumentsView arguments={item.arguments} />
      </div>
    </li>
  );
}
