// panhuo console: the little behaviour the pages need beyond htmx (no inline script: the CSP forbids it).
(function () {
  "use strict";
  // The playbook form: show only the timing fields of the chosen trigger, and the reentry n when needed.
  function syncForm(form) {
    var trig = form.querySelector("[name=trigger]");
    if (trig) {
      form.querySelectorAll("[data-trigger]").forEach(function (el) {
        el.hidden = el.getAttribute("data-trigger") !== trig.value;
      });
    }
    var re = form.querySelector("[name=reentry]");
    var n = form.querySelector("[data-reentry-n]");
    if (re && n) { n.hidden = re.value !== "every_n_trading_days"; }
  }
  function init(root) {
    root.querySelectorAll("form[data-playbook-form]").forEach(function (form) {
      syncForm(form);
      form.addEventListener("change", function () { syncForm(form); });
    });
    root.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("submit", function (ev) {
        if (!window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (ev) { init(ev.target); });
})();
