// servicedesk: the command-center wall. The panel refreshes itself (htmx polling); this
// says loudly when refreshes stop arriving, and offers full screen for the TV.
(function () {
  "use strict";

  var status = document.getElementById("wall-status");
  var seconds = status ? Number(status.getAttribute("data-refresh")) || 15 : 15;
  var lastOk = Date.now();

  function show() {
    if (!status) return;
    var stale = Date.now() - lastOk > seconds * 3000;
    status.classList.toggle("is-stale", stale);
    status.textContent = stale
      ? "NOT UPDATING since " + new Date(lastOk).toLocaleTimeString() + " — check the connection"
      : "Live · refreshes every " + seconds + " s";
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail && event.detail.elt && event.detail.elt.id === "wall-panel") {
      lastOk = Date.now();
      show();
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    lastOk = Date.now();
    show();
  });
  setInterval(show, 5000);

  var button = document.getElementById("wall-fullscreen");
  if (button && document.documentElement.requestFullscreen) {
    button.addEventListener("click", function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else document.documentElement.requestFullscreen();
    });
  } else if (button) {
    button.hidden = true;
  }
})();
