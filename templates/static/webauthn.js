// Keyport's only script: the WebAuthn ceremonies (passkeys). Everything
// else in the portal works without JavaScript. The server keeps each
// ceremony's challenge; this script carries the options to the browser's
// authenticator and its answer back. Pages give translated messages in
// data-* attributes of their error element.
(function () {
  "use strict";

  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials && window.fetch);
  }

  function csrfToken() {
    var el = document.querySelector('input[name="csrf_token"]');
    return el ? el.value : "";
  }

  // Requests run one after another: a begin request sets the ceremony
  // cookie, and the finish must meet the cookie of its own begin, even
  // when the autofill's begin and a button's begin overlap.
  var queue = Promise.resolve();

  function post(url, body) {
    var run = function () {
      return fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(body || {})
      }).then(function (resp) {
        return resp.text().then(function (text) {
          var data = null;
          try { data = JSON.parse(text); } catch (e) { data = null; }
          if (!resp.ok || !data) {
            var err = new Error(data && data.message ? data.message : "");
            err.server = !!(data && data.message);
            throw err;
          }
          return data;
        });
      });
    };
    var p = queue.then(run);
    queue = p.catch(function () {});
    return p;
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }

  function credentialJSON(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: bufToB64url(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: { clientDataJSON: bufToB64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64url(r.userHandle);
    }
    return out;
  }

  // message picks what to tell the person: the server's (translated)
  // message, or the page's text for what the browser reported.
  function message(el, err) {
    var d = el.dataset || {};
    if (err && err.server) return err.message;
    switch (err && err.name) {
      case "NotAllowedError": case "AbortError": case "TimeoutError":
        return d.cancelled || "The passkey request was cancelled or timed out. Please try again.";
      case "InvalidStateError":
        return d.exists || d.failed || "This passkey is already registered.";
      case "Unsupported":
        return d.unsupported || "This browser cannot use passkeys.";
    }
    return d.failed || "Something went wrong. Please reload the page and try again.";
  }

  function showError(el, err) {
    if (!el) return;
    el.textContent = message(el, err);
    el.hidden = false;
  }

  function hideError(el) {
    if (el) el.hidden = true;
  }

  var unsupported = { name: "Unsupported" };

  // Only paths on this site: the server sends nothing else, and a script
  // should not be talked into leaving.
  function go(data) {
    var to = data && data.redirect;
    if (typeof to !== "string" || to.charAt(0) !== "/" || to.charAt(1) === "/" || to.charAt(1) === "\\") to = "/";
    window.location.assign(to);
  }

  // Adding a passkey on /security/passkeys.
  var reg = document.getElementById("passkey-register");
  if (reg) {
    var regErr = document.getElementById("passkey-error");
    reg.addEventListener("submit", function (ev) {
      ev.preventDefault();
      hideError(regErr);
      if (!supported()) { showError(regErr, unsupported); return; }
      var pw = reg.querySelector('input[name="confirm_password"]');
      var name = reg.querySelector('input[name="name"]');
      var button = reg.querySelector('button[type="submit"]');
      button.disabled = true;
      post("/security/passkeys/register/begin", { name: name ? name.value : "", confirm_password: pw ? pw.value : "" })
        .then(function (data) { return navigator.credentials.create(creationOptions(data.options)); })
        .then(function (cred) { return post("/security/passkeys/register/finish", { credential: credentialJSON(cred) }); })
        .then(go)
        .catch(function (err) { button.disabled = false; showError(regErr, err); });
    });
  }

  // Username-less sign-in on /login: the button, and the browser's
  // autofill of passkeys in the username field (conditional mediation).
  var signin = document.getElementById("passkey-signin");
  if (signin && supported()) {
    var form = document.querySelector('form[action="/login"]');
    var field = function (n) { var el = form && form.querySelector('input[name="' + n + '"]'); return el ? el.value : ""; };
    var loginErr = document.getElementById("passkey-error");
    var pending = null;
    var login = function (mediation) {
      if (pending) pending.abort();
      var ctl = new AbortController();
      pending = ctl;
      return post("/login/passkey/begin")
        .then(function (data) {
          var opts = requestOptions(data.options);
          opts.signal = ctl.signal;
          if (mediation) opts.mediation = mediation;
          return navigator.credentials.get(opts);
        })
        .then(function (cred) {
          return post("/login/passkey/finish", { authRequestID: field("authRequestID"), return_to: field("return_to"), credential: credentialJSON(cred) });
        })
        .then(go);
    };
    var autofill = function () {
      if (!PublicKeyCredential.isConditionalMediationAvailable) return;
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        // Quiet unless the server refused: the person may be typing a password.
        login("conditional").catch(function (err) { if (err && err.server) showError(loginErr, err); });
      }).catch(function () {});
    };
    signin.hidden = false;
    signin.addEventListener("click", function () {
      hideError(loginErr);
      login(null).catch(function (err) {
        showError(loginErr, err);
        autofill();
      });
    });
    autofill();
  }

  // A passkey as the second step after a password (#passkey-2fa on /login/2fa).
  var second = document.getElementById("passkey-2fa");
  if (second) {
    var btn = document.getElementById("passkey-2fa-button");
    var secondErr = second.querySelector(".field-error") || document.getElementById("passkey-error");
    if (!supported()) {
      btn.disabled = true;
      showError(secondErr, unsupported);
    }
    btn.addEventListener("click", function () {
      hideError(secondErr);
      var remember = document.querySelector('input[name="remember_device"]');
      btn.disabled = true;
      // The sign-in record that owes the second factor.
      var request = second.dataset.request || "";
      post(second.dataset.begin, { authRequestID: request })
        .then(function (data) { return navigator.credentials.get(requestOptions(data.options)); })
        .then(function (cred) {
          return post(second.dataset.finish, { authRequestID: request, remember_device: !!(remember && remember.checked), credential: credentialJSON(cred) });
        })
        .then(go)
        .catch(function (err) { btn.disabled = false; showError(secondErr, err); });
    });
  }
})();
