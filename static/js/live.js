// The live check-in screen: a fresh venue QR every 10 s (it rotates every 30 s) and the counts.
(function () {
  var root = document.getElementById("live");
  if (!root) return;
  // Times are shown in the service's time zone (Asia/Shanghai by default), whatever the device's.
  function hhmm(iso) {
    var format = new Intl.DateTimeFormat("zh-CN", { timeZone: document.documentElement.dataset.tz || undefined,
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    return format.format(iso ? new Date(iso) : new Date());
  }
  var img = document.getElementById("venue-qr"), status = document.getElementById("live-status");
  function refreshCode() {
    var next = new Image();
    next.onload = function () { img.src = next.src; status.textContent = "在线"; };
    next.onerror = function () { status.textContent = "网络异常，正在重试"; };
    next.src = root.dataset.pngUrl + "?t=" + Date.now();
  }
  function refreshCounts() {
    fetch(root.dataset.liveUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (d) {
      document.getElementById("inside").textContent = d.inside;
      document.getElementById("checked-in").textContent = d.checked_in;
      document.getElementById("signed-up").textContent = d.signed_up;
      var list = document.getElementById("latest"); list.innerHTML = "";
      d.latest.forEach(function (x) {
        var li = document.createElement("li"); li.textContent = x.name + " " + x.action + " " + hhmm(x.at);
        list.appendChild(li);
      });
    }).catch(function () { status.textContent = "网络异常，正在重试"; });
  }
  setInterval(refreshCode, 10000);
  setInterval(refreshCounts, 5000);
  refreshCounts();
})();
