// Loaded by every page. Pages carry no inline script or event handler (the CSP forbids them), so the
// two small behaviours they share are declared with data- attributes and handled here:
// data-confirm on a form or its submit button asks before it is sent; data-print prints the page.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var text = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (text && !window.confirm(text)) event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-print]") : null;
    if (target) {
      event.preventDefault();
      window.print();
    }
  });
})();
