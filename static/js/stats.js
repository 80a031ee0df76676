/* Statistics pages: charts from the page's JSON data (Chart.js, vendored), and sortable tables (the
   report's print button is page.js's data-print). No inline script: the figures come in <script type="application/json">. */
(function () {
  "use strict";

  var RED = "#c8102e", GOLD = "#d4a017", GREY = "#98a2b3";

  function data() {
    var node = document.getElementById("stats-charts");
    return node ? JSON.parse(node.textContent) : null;
  }

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { position: "bottom" } } }, config.options || {});
    new Chart(canvas, config);
  }

  function draw(d) {
    Chart.defaults.font.family = '"Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif';
    chart("chart-trend", {
      data: { labels: d.months, datasets: [
        { type: "bar", label: "参与人次", data: d.participations, backgroundColor: RED, yAxisID: "y" },
        { type: "line", label: "服务时长（小时）", data: d.hours, borderColor: GOLD, backgroundColor: GOLD, yAxisID: "y1" }
      ] },
      options: { scales: { y: { beginAtZero: true, position: "left" },
        y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } }
    });
    chart("chart-points", {
      type: "line",
      data: { labels: d.months, datasets: [
        { label: "发放积分", data: d.issued, borderColor: RED, backgroundColor: RED },
        { label: "兑换积分", data: d.redeemed, borderColor: GREY, backgroundColor: GREY }
      ] },
      options: { scales: { y: { beginAtZero: true } } }
    });
    chart("chart-children", {
      type: "bar",
      data: { labels: d.children, datasets: [
        { label: "服务时长（小时）", data: d.child_hours, backgroundColor: RED },
        { label: "参与人次", data: d.child_participations, backgroundColor: GOLD }
      ] },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true } } }
    });
  }

  function cellValue(row, index, numeric) {
    var cell = row.children[index];
    var raw = cell.getAttribute("data-value");
    if (raw === null) raw = cell.textContent.trim();
    if (!numeric) return raw;
    return raw === "" ? -Infinity : parseFloat(raw);
  }

  function sortable(table) {
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, index) {
      th.tabIndex = 0;
      th.setAttribute("role", "button");
      th.title = "点击排序";
      function sort() {
        var numeric = th.getAttribute("data-sort") === "number";
        var down = th.getAttribute("aria-sort") !== "descending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
          var order = numeric ? x - y : String(x).localeCompare(String(y), "zh-CN");
          return down ? -order : order;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var d = data();
    if (d) draw(d);
    document.querySelectorAll("table.sortable").forEach(sortable);
  });
})();
