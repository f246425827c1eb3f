// The signed-out page loads the apps' front-channel logout URIs in hidden
// iframes (OpenID Connect Front-Channel Logout 1.0). Once every frame has
// loaded, or after three seconds at most, it follows the Continue link:
// back to the app that asked for the sign-out.
(function () {
  "use strict";
  var next = document.getElementById("logout-continue");
  if (!next) {
    return;
  }
  var frames = document.querySelectorAll("iframe.logout-frame");
  var left = frames.length;
  var gone = false;
  function go() {
    if (!gone) {
      gone = true;
      window.location.assign(next.href);
    }
  }
  frames.forEach(function (f) {
    f.addEventListener("load", function () {
      left -= 1;
      if (left <= 0) {
        go();
      }
    });
  });
  window.setTimeout(go, 3000);
  if (left === 0) {
    go();
  }
})();
