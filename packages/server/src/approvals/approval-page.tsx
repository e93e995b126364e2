import { renderPage } from '../web/layout.tsx';
import { ArgumentsRow, DecisionForms, RequestTable, type DecisionPageView } from './decision-page.tsx';
import type { BodyMember, ReadableBody } from './readable-body.ts';
import type { Approval } from './service.ts';

/** The arguments of a request as the person reads them (see readableBody). */
export type ReadableArguments = ReadableBody;

export interface ApprovalView extends DecisionPageView {
  approval: Approval;
  actionDescription: string;
  body: ReadableArguments;
}

const STATUS_TEXT: Record<Approval['status'], string> = {
  pending: 'Waiting for your decision.',
  approved: 'You approved this request. The agent can now make this call once.',
  denied: 'You denied this request.',
  used: 'You approved this request and the agent has made the call.',
};

/** Maximum length, in characters, of a member value that the member list shows whole when the member is not a declared argument. */
export const MAX_LISTED_VALUE_CHARS = 200;

/**
 * Lines longer than this many characters are wider than the body's box on a typical screen, so
 * the page notes that the box scrolls sideways. An estimate for the 40rem page width in a
 * monospace font; the box scrolls at any width.
 */
const WIDE_LINE_CHARS = 70;

/** Renders the approval page: the exact request an agent wants to make for the person, and the decision buttons. */
export function renderApprovalPage(view: ApprovalView): string {
  const { approval } = view;
  const expired = approval.status === 'pending' && Number(approval.expires_at) <= view.now;
  const decidable = approval.status === 'pending' && !expired;
  const approveUnavailable = view.body.kind === 'not_shown' ? 'Approve is not offered, because the request body cannot be shown to you in full. You can only deny this request.' : undefined;

  return renderPage(
    'Approve a request',
    <>
      <h1>{`${view.agentName} asks to make a call for you`}</h1>
      <p>{`Signed in as ${view.personName}. Approving allows this one request, exactly as shown, once.`}</p>
      <p id="forwarded-headers">Of the agent's request headers, the approved call passes on only Content-Type, Accept and Accept-Language, and Mandate drops all others.</p>
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

      <DecisionForms view={view} path={`/approvals/${approval.id}`} statusText={STATUS_TEXT[approval.status]} expired={expired} decidable={decidable} approveUnavailable={approveUnavailable} />
    </>,
  );
}

/**
 * Shows a request body: the list of its top-level members when it is a JSON object, then the
 * whole body. A body that cannot be shown whole gets the reason instead. `undefined` is a body
 * this server no longer has.
 */
export function ArgumentsView(props: { arguments: ReadableArguments | undefined }) {
  const body = props.arguments ?? { kind: 'not_shown', reason: 'This server no longer has a readable copy of the request body.' };
  if (body.kind === 'empty') return <em>(empty)</em>;
  if (body.kind === 'not_shown') return <p class="error body-not-shown">{body.reason}</p>;

  const wideLines = body.text.split('\n').some((line) => line.length > WIDE_LINE_CHARS);
  return (
    <>
      {body.members === undefined ? null : <MemberList members={body.members} />}
      {body.format === 'json_as_sent' ? <p class="notice as-sent">This JSON repeats a member name, has a number that programs may read differently, or nests very deep, so it is shown exactly as sent.</p> : null}
      {body.members === undefined ? null : <p>{`The whole request body (${body.totalBytes} bytes):`}</p>}
      <pre>{body.text}</pre>
      {wideLines ? <p class="notice wide-lines">Some lines are wider than the box above; scroll it sideways to read them to the end.</p> : null}
      {body.escapedCharacters ? <p class="notice escaped-characters">Characters that would be invisible or reorder the text are shown as \uXXXX escapes.</p> : null}
    </>
  );
}

/** Lists every top-level member of a JSON object body. Long values that are not declared arguments are shortened, with a notice. */
function MemberList(props: { members: BodyMember[] }) {
  return (
    <table class="members">
      <thead>
        <tr>
          <th>Member</th>
          <th>Value</th>
        </tr>
      </thead>
      <tbody>
        {props.members.map((member, index) => (
          <tr class="member" key={index}>
            <td class="member-name">
              <code>{member.name}</code>
              {member.declaredType === undefined ? null : <span class="declared">{` declared argument (${member.declaredType})`}</span>}
            </td>
            <td class="member-value">
              <MemberValue member={member} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function MemberValue(props: { member: BodyMember }) {
  const { member } = props;
  const characters = Array.from(member.value);
  if (member.showInFull || characters.length <= MAX_LISTED_VALUE_CHARS) return <code>{member.value}</code>;
  return (
    <>
      <code>{`${characters.slice(0, MAX_LISTED_VALUE_CHARS).join('')}…`}</code>
      <p class="notice shortened">{`Shortened here to its first ${MAX_LISTED_VALUE_CHARS} of ${characters.length} characters. The whole request body below shows it in full.`}</p>
    </>
  );
}

/** Renders a short page for an approval that cannot be shown or decided, with a link back to `returnTo` when given. */
export function renderApprovalMessage(title: string, message: string, returnTo?: string): string {
  return renderPage(
    title,
    <>
      <h1>{title}</h1>
      <p class="error">{message}</p>
      {returnTo === undefined ? null : (
        <p>
          <a id="back" href={returnTo}>
            Back to the request
          </a>
        </p>
      )}
    </>,
  );
}
