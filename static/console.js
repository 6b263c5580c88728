// The console's small enhancements; every screen works without them.
// Copy buttons, the page form's live preview, sortable tables. Nothing loads from elsewhere.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve) {
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      resolve();
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    copyText(source.value).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () {
        button.textContent = label;
        button.classList.remove("copied");
      }, 1500);
    });
  });

  // Live preview: inputs with data-preview="name" fill [data-preview-target="name"].
  var form = document.querySelector("[data-preview-form]");
  if (form) {
    form.addEventListener("input", function (event) {
      var name = event.target.getAttribute("data-preview");
      if (name) {
        var target = document.querySelector('[data-preview-target="' + name + '"]');
        if (target) target.textContent = event.target.value;
      }
      var cta = event.target.getAttribute("data-preview-cta");
      if (cta) {
        var button = document.querySelector('[data-preview-cta-target="' + cta + '"]');
        if (button) button.classList.toggle("hidden", !event.target.checked);
      }
    });
  }

  // Sortable tables: a click on a header sorts by that column (data-sort when present).
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, index) {
      th.tabIndex = 0;
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[index], y = b.cells[index];
          var u = x ? (x.getAttribute("data-sort") || x.textContent.trim()) : "";
          var v = y ? (y.getAttribute("data-sort") || y.textContent.trim()) : "";
          var n = parseFloat(u), m = parseFloat(v);
          var order = (!isNaN(n) && !isNaN(m) && String(n) === u && String(m) === v)
            ? n - m : u.localeCompare(v);
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  });
})();

// "Add a row" for the event mapping: a copy of the last row, its index one higher, empty.
(function () {
  "use strict";
  document.querySelectorAll("[data-add-row]").forEach(function (button) {
    var body = document.getElementById(button.getAttribute("data-add-row"));
    if (!body) return;
    button.classList.remove("hidden");
    document.querySelectorAll(".no-js-only").forEach(function (el) { el.classList.add("hidden"); });
    button.addEventListener("click", function () {
      var last = body.rows[body.rows.length - 1];
      var row = last.cloneNode(true);
      var index = body.rows.length;
      row.querySelectorAll("input").forEach(function (input) {
        input.name = input.name.replace(/\[\d+\]/, "[" + index + "]");
        var label = input.getAttribute("aria-label");
        if (label) input.setAttribute("aria-label", label.replace(/\d+$/, String(index + 1)));
        input.removeAttribute("aria-invalid");
        if (input.type === "checkbox") input.checked = false; else input.value = "";
      });
      row.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
      body.appendChild(row);
      row.querySelector("input").focus();
    });
  });
})();
