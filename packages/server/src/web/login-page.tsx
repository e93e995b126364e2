import { CsrfField, renderPage } from './layout.tsx';

export function renderLoginPage(view: { returnTo: string; csrfToken: string; error?: string | undefined; username?: string | undefined }): string {
  return renderPage(
    'Sign in',
    <>
      <h1>Sign in</h1>
      {view.error === undefined ? null : <p class="error">{view.error}</p>}
      <form method="post" action="/login">
        <CsrfField token={view.csrfToken} />
        <input type="hidden" name="return_to" value={view.returnTo} />
        <label for="username">Username</label>
        <input type="text" id="username" name="username" autocomplete="username" value={view.username ?? ''} required />
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="current-password" required />
        <button type="submit" id="sign-in">
          Sign in
        </button>
      </form>
    </>,
  );
}
