// facebench report: sortable tables, vanilla JS, no dependency (MIT, part of facebench-core).
// A header button sorts its table's body rows by the cells' data-v (numbers) or their text;
// a second click reverses the order; cells without a value always go last.
"use strict";
(function () {
  function key(cell) {
    if (!cell) return null;
    var raw = cell.getAttribute("data-v");
    if (raw !== null) return raw === "" ? null : Number(raw);
    var text = cell.textContent.trim();
    return text === "" || text === "\u2014" ? null : text;
  }
  function compare(a, b) {
    if (a === null) return b === null ? 0 : 1;
    if (b === null) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }
  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, i) { return [key(row.cells[index]), i, row]; });
    keyed.sort(function (x, y) {
      if (x[0] === null || y[0] === null) return compare(x[0], y[0]) || x[1] - y[1];
      return (ascending ? compare(x[0], y[0]) : compare(y[0], x[0])) || x[1] - y[1];
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (k) { fragment.appendChild(k[2]); });
    body.appendChild(fragment);
    Array.prototype.forEach.call(th.parentNode.children, function (other) {
      if (other.hasAttribute("aria-sort")) other.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("th[aria-sort] > button");
    if (button) sortBy(button.parentNode);
  });
})();
