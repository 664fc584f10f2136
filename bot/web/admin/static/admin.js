/* 智能小城 analyst console: the "copy" buttons next to the YAML snippets.
 * Loaded as a file (the Content-Security-Policy allows no inline script); the
 * buttons stay hidden when JavaScript does not run. */
(function () {
  "use strict";

  function announce(text) {
    var status = document.getElementById("copy-status");
    if (status) {
      status.textContent = "";
      window.setTimeout(function () { status.textContent = text; }, 50);
    }
  }

  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copied(button) {
    button.textContent = "已复制";
    announce("已复制到剪贴板");
    window.setTimeout(function () { button.textContent = "复制"; }, 2000);
  }

  function fallback(button, source) {
    selectText(source);
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    if (ok) {
      copied(button);
    } else {
      announce("无法自动复制，已选中文字，请按 Ctrl+C 复制");
    }
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button); },
        function () { fallback(button, source); }
      );
    } else {
      fallback(button, source);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button[data-copy]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
  });
})();
