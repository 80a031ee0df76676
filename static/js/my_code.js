// Refresh the personal code every 30 s (it changes every minute) and say so when offline.
(function () {
  var img = document.getElementById("code-img");
  var status = document.getElementById("code-status");
  if (!img) return;
  function refresh() {
    var next = new Image();
    next.onload = function () { img.src = next.src; status.textContent = "有效"; };
    next.onerror = function () { status.textContent = "网络异常，请稍后"; };
    next.src = img.getAttribute("data-src") + "?t=" + Date.now();
  }
  setInterval(refresh, 30000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
