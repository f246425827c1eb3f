// Keyport's only script: the WebAuthn ceremonies (passkeys). Everything
// else in the portal works without JavaScript.
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

  function csrfToken() {
    var el = document.querySelector('input[name="csrf_token"]');
    return el ? el.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body || {})
    }).then(function (resp) {
      return resp.json().then(function (data) {
        if (!resp.ok) throw new Error(data.message || "The request failed.");
        return data;
      });
    });
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

  function showError(el, err) {
    if (!el) return;
    el.textContent = err && err.message ? err.message : String(err);
    el.hidden = false;
  }

  function go(data) { window.location.assign(data.redirect || "/"); }

  // Registration on /security/passkeys.
  var reg = document.getElementById("passkey-register");
  if (reg) {
    reg.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var errEl = document.getElementById("passkey-error");
      var pw = reg.querySelector('input[name="confirm_password"]');
      var name = reg.querySelector('input[name="name"]').value;
      post("/security/passkeys/register/begin", { confirm_password: pw ? pw.value : "" })
        .then(function (data) { return navigator.credentials.create(creationOptions(data.options)); })
        .then(function (cred) { return post("/security/passkeys/register/finish", { name: name, credential: credentialJSON(cred) }); })
        .then(go)
        .catch(function (err) { showError(errEl, err); });
    });
  }

  // Username-less sign-in on /login: the button, and the browser's autofill.
  var signin = document.getElementById("passkey-signin");
  if (signin) {
    var form = document.querySelector('form[action="/login"]');
    var field = function (n) { var el = form && form.querySelector('input[name="' + n + '"]'); return el ? el.value : ""; };
    var errEl = document.getElementById("passkey-error");
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
    signin.hidden = false;
    signin.addEventListener("click", function () {
      login(null).catch(function (err) { if (err.name !== "AbortError") showError(errEl, err); });
    });
    if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) login("conditional").catch(function () {});
      });
    }
  }

  // Second factor after a password.
  var second = document.getElementById("passkey-2fa");
  if (second) {
    var btn = document.getElementById("passkey-2fa-button");
    var err2 = document.getElementById("passkey-error");
    btn.addEventListener("click", function () {
      var remember = document.querySelector('input[name="remember_device"]');
      post(second.dataset.begin)
        .then(function (data) { return navigator.credentials.get(requestOptions(data.options)); })
        .then(function (cred) {
          return post(second.dataset.finish, { remember_device: !!(remember && remember.checked), credential: credentialJSON(cred) });
        })
        .then(go)
        .catch(function (err) { showError(err2, err); });
    });
  }
})();
