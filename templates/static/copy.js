// Copy buttons for secrets shown once (app passwords, API tokens, recovery
// codes, the authenticator key). A button names what it copies:
//   <button type="button" data-copy="new-secret" hidden …>Copy</button>
// It stays hidden without this script, where the value is still there to
// select by hand. Clicking selects the value (so Ctrl+C works whatever the
// browser allows) and writes it to the clipboard; a status line next to
// the button says whether that worked. No inline script: the CSP allows
// scripts from /static only.
(function () {
  "use strict";

  // The text to copy: a list's items one per line, else the element's own
  // text, without the spaces the markup adds around it.
  function textOf(el) {
    if (el.tagName === "OL" || el.tagName === "UL") {
      return Array.prototype.map.call(el.querySelectorAll("li"), function (li) {
        return li.textContent.trim();
      }).join("\n");
    }
    return el.textContent.trim();
  }

  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function say(button, text) {
    var status = document.getElementById(button.getAttribute("aria-describedby"));
    if (status) {
      status.textContent = text;
    }
  }

  function copy(button) {
    var target = document.getElementById(button.dataset.copy);
    if (!target) {
      return;
    }
    var text = textOf(target);
    select(target);
    var done = function () { say(button, button.dataset.copied); };
    var failed = function () {
      // Older browsers: copy the selection made above.
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      say(button, ok ? button.dataset.copied : button.dataset.failed);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, failed);
    } else {
      failed();
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { copy(button); });
  });
})();
