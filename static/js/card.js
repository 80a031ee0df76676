// The resident's card page: confirm before a new card voids the old one; print the card.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-confirm]"), function (button) {
    button.addEventListener("click", function (e) {
      if (!window.confirm(button.dataset.confirm)) e.preventDefault();
    });
  });
  var print = document.getElementById("print-card");
  if (print) print.addEventListener("click", function () { window.print(); });
})();
