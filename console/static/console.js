// The console's few behaviours that plain HTML lacks: confirmation dialogs, copy buttons, the bulk
// selection, the branch filter box and the customer auto-fill. Delegated listeners, because htmx
// replaces the table rows every few seconds and per-row listeners would be lost.
(function () {
  "use strict";

  function selected() {
    return document.querySelectorAll("input.row-select:checked").length;
  }

  function refreshSelection() {
    var count = selected();
    document.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = String(count); });
    document.querySelectorAll("[data-needs-selection]").forEach(function (el) { el.disabled = count === 0; });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-dialog], [data-close], [data-copy], [data-customer]");
    if (!target) { return; }
    if (target.hasAttribute("data-dialog")) {
      var dialog = document.getElementById(target.getAttribute("data-dialog"));
      if (dialog && typeof dialog.showModal === "function") { dialog.showModal(); }
    } else if (target.hasAttribute("data-close")) {
      var open = target.closest("dialog");
      if (open) { open.close(); }
    } else if (target.hasAttribute("data-copy")) {
      var text = target.getAttribute("data-copy");
      var done = function () {
        target.classList.add("copied");
        target.title = target.getAttribute("data-copied") || "";
        setTimeout(function () { target.classList.remove("copied"); }, 1200);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      }
    } else if (target.hasAttribute("data-customer")) {
      var fill = { customer_id: "data-customer", customer_name: "data-name", phone_number: "data-phone", email: "data-email" };
      Object.keys(fill).forEach(function (id) {
        var input = document.getElementById(id);
        if (input) { input.value = target.getAttribute(fill[id]) || ""; }
      });
      var phone = document.getElementById("phone_number");
      if (phone && window.htmx) { window.htmx.trigger(phone, "change"); }
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("input[data-select-all]")) {
      document.querySelectorAll("input.row-select").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches("input.row-select, input[data-select-all]")) { refreshSelection(); }
    if (target.id === "customer_name" || target.id === "phone_number") {
      // A typed-over name or number is no longer the picked customer.
      var customer = document.getElementById("customer_id");
      if (customer && event.isTrusted) { customer.value = ""; }
    }
  });

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (!target.matches("input[data-filter-options]")) { return; }
    var select = document.getElementById(target.getAttribute("data-filter-options"));
    if (!select) { return; }
    var term = target.value.trim().toLowerCase();
    var first = null;
    Array.prototype.forEach.call(select.options, function (option, index) {
      var show = index === 0 || option.text.toLowerCase().indexOf(term) !== -1;
      option.hidden = !show;
      if (show && index > 0 && first === null) { first = option; }
    });
    if (term && first) { select.value = first.value; }
  });

  // Live refresh must not throw away a selection the user is making, nor redraw under an open dialog.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (source && source.id === "queue-results" && (selected() > 0 || document.querySelector("dialog[open]"))) {
      event.preventDefault();
    }
  });
  document.addEventListener("htmx:afterSwap", refreshSelection);
  document.addEventListener("DOMContentLoaded", refreshSelection);
})();
