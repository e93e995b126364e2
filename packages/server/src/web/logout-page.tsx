import { CsrfField, renderPage } from './layout.tsx';

export interface LogoutConfirmationView {
  /** The signed-in person, whose session the form's CSRF token belongs to. */
  personName: string;
  /** The client that asked for the sign-out, when the request identified one. */
  clientName: string | undefined;
  /** Validated logout parameters, posted back unchanged with the confirmation. */
  params: Record<string, string>;
  /** CSRF token of the sign-out form for the signed-in session (identity/session-csrf.ts). */
  csrfToken: string;
}

/** Renders the confirmation page of a sign-out (RP-Initiated Logout 1.0 §2). */
export function renderLogoutConfirmationPage(view: LogoutConfirmationView): string {
  return renderPage(
    'Sign out',
    <>
      <h1>Sign out of Mandate?</h1>
      <p>{`Signed in as ${view.personName}.`}</p>
      {view.clientName === undefined ? null : (
        <p>
          <strong>{view.clientName}</strong> asks you to sign out of Mandate as well.
        </p>
      )}
      <p>Signing out ends your Mandate session in this browser. The delegations you gave to agents stay in place.</p>
      <form method="post" action="/logout/confirm">
        <CsrfField token={view.csrfToken} />
        {Object.entries(view.params).map(([name, value]) => (
          <input type="hidden" name={name} value={value} />
        ))}
        <div class="actions">
          <button type="submit" id="sign-out">
            Sign out
          </button>
        </div>
      </form>
      <p>
        To stay signed in, close this page or go to <a href="/account/delegations">My delegations</a>.
      </p>
    </>,
  );
}

/** Renders the page shown after sign-out when there is no registered URI to return to. */
export function renderSignedOutPage(): string {
  return renderPage(
    'Signed out',
    <>
      <h1 id="signed-out">You are signed out</h1>
      <p>Your Mandate session in this browser has ended. You can close this page.</p>
    </>,
  );
}

/** Renders the error page of a rejected logout request; the browser is never redirected from it. */
export function renderLogoutErrorPage(message: string): string {
  return renderPage(
    'Sign-out error',
    <>
      <h1>This sign-out request cannot be completed</h1>
      <p class="error" id="logout-error">
        {message}
      </p>
      <p>
        Nothing was signed out. To sign out of Mandate anyway, <a href="/logout">start a sign-out here</a>.
      </p>
    </>,
  );
}
