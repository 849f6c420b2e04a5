// servicedesk: live countdowns from the server's clock, keyboard shortcuts, presence.
// No inline scripts anywhere (the Content-Security-Policy forbids them): everything is here.
(function () {
  "use strict";

  // ---- the server's clock ---------------------------------------------------------------
  // Every page and polled fragment carries data-server-now (ms since the epoch, stamped
  // when the server rendered it). Time is that stamp plus the monotonic time elapsed since
  // it arrived, so a wrong clock on this computer changes nothing.
  var clock = { server: NaN, mono: 0 };

  function syncClock(root) {
    var holder = root && root.matches && root.matches("[data-server-now]")
      ? root
      : (root || document).querySelector("[data-server-now]");
    var value = holder ? Number(holder.getAttribute("data-server-now")) : NaN;
    if (!isNaN(value) && value > 0) {
      clock.server = value;
      clock.mono = performance.now();
    }
  }

  function serverNow() {
    if (isNaN(clock.server)) return null;
    return clock.server + (performance.now() - clock.mono);
  }

  function duration(ms) {
    var total = Math.floor(Math.abs(ms) / 1000);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (total >= 86400) return Math.floor(total / 86400) + "d " + Math.floor((total % 86400) / 3600) + "h";
    if (total >= 3600) return Math.floor(total / 3600) + "h " + pad(Math.floor((total % 3600) / 60)) + "m";
    if (total >= 60) return Math.floor(total / 60) + "m " + pad(total % 60) + "s";
    return total + "s";
  }

  var LEVELS = ["cd-ok", "cd-amber", "cd-red", "cd-overdue"];

  function tick() {
    var now = serverNow();
    if (now === null) return;
    document.querySelectorAll("time.countdown[data-deadline]").forEach(function (el) {
      var start = Number(el.getAttribute("data-start"));
      var deadline = Number(el.getAttribute("data-deadline"));
      var window = Math.max(deadline - start, 1000);
      var left = deadline - now;
      var used = (now - start) / window;
      var level, text;
      if (left < 0) { level = "cd-overdue"; text = "overdue by " + duration(left); }
      else {
        level = used >= 0.8 ? "cd-red" : used >= 0.5 ? "cd-amber" : "cd-ok";
        text = duration(left) + " left";
      }
      if (el.textContent !== text) el.textContent = text;
      if (!el.classList.contains(level)) {
        LEVELS.forEach(function (name) { el.classList.remove(name); });
        el.classList.add(level);
      }
    });
    document.querySelectorAll("time.elapsed[data-since]").forEach(function (el) {
      var text = duration(now - Number(el.getAttribute("data-since")));
      if (el.textContent !== text) el.textContent = text;
    });
  }

  // ---- inbox and queue: j/k move, Enter opens, c claims ---------------------------------
  var selectedId = null;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#inbox tr.inbox-row"));
  }

  function select(row) {
    rows().forEach(function (r) { r.classList.remove("is-selected"); r.removeAttribute("aria-selected"); });
    if (!row) return;
    row.classList.add("is-selected");
    row.setAttribute("aria-selected", "true");
    selectedId = row.getAttribute("data-url");
    row.focus({ preventScroll: false });
  }

  function reselect() {
    if (!selectedId) return;
    var row = rows().filter(function (r) { return r.getAttribute("data-url") === selectedId; })[0];
    if (row) {
      row.classList.add("is-selected");
      row.setAttribute("aria-selected", "true");
    }
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    // Ctrl+Enter in the draft editor: send when allowed, otherwise submit for review.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.id === "draft-body") {
      var send = document.getElementById("send-button");
      var submit = document.getElementById("submit-button");
      var button = send && !send.disabled ? send : submit && !submit.disabled ? submit : null;
      if (button) { event.preventDefault(); button.click(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var list = rows();
    if (!list.length) return;
    var current = list.indexOf(document.querySelector("#inbox tr.is-selected"));
    if (event.key === "j") { event.preventDefault(); select(list[Math.min(current + 1, list.length - 1)]); }
    else if (event.key === "k") { event.preventDefault(); select(list[Math.max(current - 1, 0)]); }
    else if (event.key === "Enter" && current >= 0) { event.preventDefault(); window.location.assign(list[current].getAttribute("data-url")); }
    else if (event.key === "c" && current >= 0) {
      var claim = list[current].querySelector(".claim-form");
      if (claim) { event.preventDefault(); claim.requestSubmit ? claim.requestSubmit() : claim.submit(); }
    }
  });

  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("#inbox tr.inbox-row");
    if (row && !event.target.closest("a, button, form")) select(row);
  });

  // ---- presence: "drafting" while the editor is in use ---------------------------------
  var idleTimer = null;
  document.addEventListener("input", function (event) {
    if (event.target.id !== "draft-body") return;
    var field = document.getElementById("presence-activity");
    if (!field) return;
    field.value = "drafting";
    clearTimeout(idleTimer);
    idleTimer = setTimeout(function () { field.value = "viewing"; }, 30000);
  });

  // ---- htmx swaps: new server time, keep the selection ---------------------------------
  document.addEventListener("htmx:afterSwap", function (event) {
    syncClock(event.detail && event.detail.elt ? event.detail.elt : document);
    reselect();
    tick();
  });
  // After a swap replaced the polled element itself (outerHTML), look again from the top.
  document.addEventListener("htmx:afterSettle", function () {
    syncClock(document.getElementById("inbox-rows") || document.getElementById("queue-rows") || document.body);
    reselect();
  });

  syncClock(document.body);
  tick();
  setInterval(tick, 1000);
})();
