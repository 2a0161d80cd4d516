// hostwatch dashboard: requests, the token, the message area. The token
// lives in this closure only (never storage, cookies, the URL or history):
// closing the tab or "Forget token" ends it.
(function () {
  'use strict';
  const HW = window.HW;

  let token = null;
  // May the token act? null until known: the audit (a control route,
  // fetched once a token is given) tells, and so does a 403.
  let control = null;
  const listeners = [];

  HW.token = {
    has: () => token !== null,
    set(t) {
      token = t;
      control = null;
      listeners.forEach((f) => f(true));
    },
    forget() {
      if (token === null) return;
      token = null;
      listeners.forEach((f) => f(false));
    },
    setControl(may) { control = may; },
    onChange: (f) => listeners.push(f),
  };

  // A non-2xx answer and what its problem+json said; `sent` is the token
  // the request carried, since a 401 is about that one.
  class ApiError extends Error {
    constructor(status, title, detail, sent) {
      super(detail || title);
      Object.assign(this, { status, title, detail, sent });
    }
  }

  // Paths are relative, so the page also works under a proxy's prefix.
  HW.request = async function (method, path) {
    const headers = { Accept: 'application/json' }, sent = token;
    if (sent !== null) headers.Authorization = 'Bearer ' + sent;
    let res;
    try {
      res = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw new ApiError(0, 'No answer', 'the agent did not answer (' + e.message + ')', sent);
    }
    if (res.ok) return res.status === 204 ? null : res.json();
    let title = res.statusText, detail = '';
    try {
      const p = await res.json();
      title = p.title || title;
      detail = p.detail || '';
    } catch (_) { /* not problem+json (a proxy's page): the status says it */ }
    throw new ApiError(res.status, title, detail, sent);
  };
  HW.get = (path) => HW.request('GET', path);

  HW.say = function (text, kind) {
    const m = HW.$('#message');
    m.textContent = text;
    m.className = kind || '';
  };

  // Why a request failed, in plain words. A token that got a 401 is wrong:
  // it is dropped, so the next action asks again.
  HW.explain = function (label, e) {
    let text;
    if (!(e instanceof ApiError)) text = label + ' failed: ' + e.message;
    else if (e.status === 401 && e.sent != null) {
      if (token === e.sent) HW.token.forget();
      text = 'The token was not accepted (401 Unauthorized). Check it, or make one with `hostwatch token --scope control`.';
    } else if (e.status === 401) text = label + ' needs a token (401 Unauthorized): ' + e.detail;
    else if (e.status === 403) text = 'This token may not do that (403 Forbidden): ' + e.detail;
    else text = label + ' failed' + (e.status ? ' (' + e.status + ' ' + e.title + ')' : '') + ': ' + e.detail;
    HW.say(text, 'error');
  };

  // ---- the token dialog ----------------------------------------------------

  let asking = null;

  // Resolves to true when a token was given. One dialog at a time: a
  // second caller waits on the same answer.
  HW.askToken = function (why) {
    if (asking) return asking;
    const dlg = HW.$('#token-dialog'), input = HW.$('#token-input');
    HW.$('#token-why').textContent = why;
    input.value = '';
    dlg.returnValue = '';
    asking = new Promise((resolve) => {
      dlg.addEventListener('close', () => {
        let given = dlg.returnValue === 'ok' ? input.value.trim() : '';
        input.value = ''; // nor does it linger in the DOM
        asking = null;
        // A header carries only visible ASCII: anything else would make
        // every request fail before it leaves the browser.
        if (given && !/^[\x21-\x7e]+$/.test(given)) {
          HW.say('That is not a token: tokens are letters, digits and punctuation, without spaces.', 'error');
          given = '';
        }
        if (given) HW.token.set(given);
        resolve(given !== '');
      }, { once: true });
    });
    dlg.showModal();
    input.focus();
    return asking;
  };

  // The form is closed by hand, not by method="dialog" itself, so no
  // browser can count it as a submission under form-action 'none'.
  function wireDialog() {
    const dlg = HW.$('#token-dialog');
    dlg.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      dlg.close(e.submitter && e.submitter.id === 'token-cancel' ? 'cancel' : 'ok');
    });
  }

  // An action needing a control token: asks for one when none is held (or
  // the one held is known to be read-only), runs `run`, and shows what
  // `done` makes of the answer, or why it failed.
  HW.act = async function (label, run, done) {
    if (token === null || control === false) {
      const given = await HW.askToken(label + ' needs a control token' +
        (token === null ? '.' : '; the one held may only read.') + ' It is kept in this tab\'s memory only.');
      if (!given) {
        HW.say(label + ' needs a control token.', 'error');
        return;
      }
    }
    HW.say(label + '…', 'busy');
    try {
      HW.say(done(await run()), 'ok');
    } catch (e) {
      // A 403 means a read-only token or a guard (PID 1, the agent): a
      // token already seen to act is not taken for read-only.
      if (e.status === 403 && control !== true && e.sent === token) control = false;
      HW.explain(label, e);
    } finally {
      HW.app.refresh('audit'); // refused or not, the audit has a new row
    }
  };

  HW.api = { wireDialog };
})();
