import { Fragment } from 'preact';
import { renderPage } from '../web/layout.tsx';
import type { CibaRequest } from '../oauth/ciba/requests.ts';
import { ArgumentsRow, DecisionForms, describeDuration, RequestTable, type DecisionPageView } from './decision-page.tsx';

/** An action the agent requests, as the person reads it. */
export interface RequestedAction {
  name: string;
  description: string;
}

/**
 * The HTTP requests that the authorization detail allows. A member the detail does not bind is
 * filled in from its action, whose calls the gateway maps by method and path prefix.
 */
export interface ApprovedTarget {
  /** The bound method, or else the action's method, where `*` means every method. */
  method: string;
  /** The bound path with its query, or else the action's path prefix. */
  path: string;
  /** Whether the detail binds the path and query; otherwise any path under the prefix and any query pass. */
  pathBound: boolean;
}

/** The contents of a CIBA request's approval page. */
export interface BackchannelView extends DecisionPageView {
  request: CibaRequest;
  /** The actions the token would allow, the authorization detail's action first. */
  actions: RequestedAction[];
  /** Pretty JSON of the approved arguments; null when the detail allows any arguments; undefined without a detail. */
  argumentsText: string | null | undefined;
  /** The requests the detail allows; undefined without a detail, or when the resource no longer has its action. */
  target: ApprovedTarget | undefined;
  /** Lifetime of the access token the agent would obtain, in seconds. */
  tokenLifetimeSeconds: number;
}

/** One pending CIBA request in the approvals inbox. */
export interface BackchannelInboxItem {
  kind: 'backchannel';
  id: string;
  agentName: string;
  resourceName: string;
  actions: string[];
  bindingMessage: string | null;
  argumentsText: string | null | undefined;
  target: ApprovedTarget | undefined;
  createdAt: number;
  /** Seconds until the request expires. */
  expiresIn: number;
}

const STATUS_TEXT: Record<CibaRequest['status'], string> = {
  pending: 'Waiting for your decision.',
  approved: 'You approved this request. The agent can now obtain its access token.',
  denied: 'You denied this request.',
  issued: 'You approved this request and the agent has obtained its access token.',
};

/** Returns the path of a CIBA request's approval page. */
export function backchannelPagePath(id: string): string {
  return `/approvals/ciba/${id}`;
}

/**
 * Renders the approval page of a CIBA request: what the agent requests ahead of time,
 * the binding message to compare with the one the agent shows, and the decision buttons.
 */
export function renderBackchannelPage(view: BackchannelView): string {
  const { request } = view;
  const expired = (request.status === 'pending' || request.status === 'approved') && Number(request.expires_at) <= view.now;
  const decidable = request.status === 'pending' && !expired;

  return renderPage(
    'Approve in advance',
    <>
      <h1>{`${view.agentName} asks for your approval in advance`}</h1>
      <p>{`Signed in as ${view.personName}. Approving gives the agent one access token, valid for ${describeDuration(view.tokenLifetimeSeconds)}, that allows only what is shown here.`}</p>
      <p id="forwarded-headers">Of the agent's request headers, a call this approval releases passes on only Content-Type, Accept and Accept-Language, and Mandate drops all others.</p>
      <BindingMessage message={request.binding_message} />
      <RequestTable id="backchannel-request" view={view} expiresAt={Number(request.expires_at)} expired={expired}>
        <tr>
          <th>Actions</th>
          <td id="actions">
            <ul>
              {view.actions.map((action) => (
                <li key={action.name}>
                  <code class="action">{action.name}</code> {action.description}
                </li>
              ))}
            </ul>
          </td>
        </tr>
        {view.target === undefined ? null : (
          <tr>
            <th>Request</th>
            <td id="approved-request">
              <ApprovedRequest target={view.target} />
            </td>
          </tr>
        )}
        {view.argumentsText === undefined ? null : (
          <ArgumentsRow id="arguments">
            <ApprovedArguments text={view.argumentsText} />
          </ArgumentsRow>
        )}
      </RequestTable>

      <DecisionForms view={view} path={backchannelPagePath(request.id)} statusText={STATUS_TEXT[request.status]} expired={expired} decidable={decidable} />
    </>,
  );
}

/** Renders one CIBA request in the inbox list, labelled apart from the calls waiting for approval. */
export function BackchannelInboxEntry(props: { item: BackchannelInboxItem }) {
  const { item } = props;
  return (
    <li class="approval backchannel" id={`approval-${item.id}`}>
      <p class="label">Approval in advance (OpenID CIBA)</p>
      <p>
        <a href={backchannelPagePath(item.id)}>
          <strong class="agent">{item.agentName}</strong>
          {' asks in advance to '}
          {item.actions.map((action, index) => (
            <Fragment key={action}>
              {index === 0 ? null : ', '}
              <code class="action">{action}</code>
            </Fragment>
          ))}
          {' on '}
          <span class="resource">{item.resourceName}</span>
        </a>
      </p>
      <BindingMessage message={item.bindingMessage} />
      {item.target === undefined ? null : <ApprovedRequest target={item.target} />}
      <p>{`Expires in ${item.expiresIn} seconds`}</p>
      {item.argumentsText === undefined ? null : (
        <div class="arguments">
          <ApprovedArguments text={item.argumentsText} />
        </div>
      )}
    </li>
  );
}

/**
 * Shows the binding message, which the person compares with the message on the agent's side
 * (CIBA Core 1.0 §7.1) before approving.
 */
function BindingMessage(props: { message: string | null }) {
  if (props.message === null) return <p class="notice binding-message">The agent sent no binding message to compare.</p>;
  return (
    <p class="binding-message">
      {'Approve only if the agent shows the same message: '}
      <strong class="binding-message-text">{props.message}</strong>
    </p>
  );
}

function ApprovedArguments(props: { text: string | null }) {
  if (props.text === null) return <p class="notice">Any arguments: the agent chooses them at each call.</p>;
  return <pre>{props.text}</pre>;
}

/**
 * States which HTTP requests approving allows. A detail without a path allows every path under
 * the action's prefix and every query, which the person must see before approving.
 */
function ApprovedRequest(props: { target: ApprovedTarget }) {
  const { method, path, pathBound } = props.target;
  const anyMethod = method === '*';
  if (pathBound) {
    return (
      <p class="approved-request bound">
        {'Only the request '}
        <code class="request">{anyMethod ? path : `${method} ${path}`}</code>
        {anyMethod ? ', with any method. A call with another path or query is refused.' : '. A call with another method, path or query is refused.'}
      </p>
    );
  }
  return (
    <p class="notice approved-request unbound">
      {`Any path and any query: the agent may call ${anyMethod ? 'any method' : method} on `}
      <code class="path-prefix">{path}</code>
      {' or any path below it, with any query.'}
    </p>
  );
}
