// Kiosk: the organizer scans volunteers' personal codes (USB scanner or camera) to check them in/out.
(function () {
  var root = document.getElementById("kiosk");
  if (!root) return;
  // Times are shown in the service's time zone (Asia/Shanghai by default), whatever the device's.
  function hhmm(iso) {
    var format = new Intl.DateTimeFormat("zh-CN", { timeZone: document.documentElement.dataset.tz || undefined,
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    return format.format(iso ? new Date(iso) : new Date());
  }
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var input = document.getElementById("kiosk-scan"), result = document.getElementById("kiosk-result");
  function cue(ok) {
    result.className = "kiosk-result " + (ok ? "ok-cue" : "bad-cue");
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)(), osc = ctx.createOscillator();
      osc.frequency.value = ok ? 880 : 220; osc.connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no sound here */ }
  }
  function send(code) {
    fetch(root.dataset.scanUrl, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify({ code: code }) })
      .then(function (r) { return r.json().then(function (d) { return { ok: r.ok, d: d }; }); })
      .then(function (res) {
        if (!res.ok) { result.textContent = res.d.detail || "扫码失败"; cue(false); return; }
        var word = res.d.action === "check_in" ? "签到" : "签退";
        result.innerHTML = "";
        var face = document.createElement("div"); face.className = "avatar"; face.textContent = res.d.volunteer.name.slice(0, 1);
        var text = document.createElement("div"); text.textContent = res.d.volunteer.name + " " + word + "成功";
        result.appendChild(face); result.appendChild(text); cue(true);
        var li = document.createElement("li"); li.textContent = hhmm(res.d.action === "check_in" ? res.d.attendance.checked_in_at : res.d.attendance.checked_out_at) + " " + res.d.volunteer.name + " " + word;
        document.getElementById("kiosk-log").prepend(li);
      })
      .catch(function () { result.textContent = "网络异常，请重扫"; cue(false); });
  }
  input.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") return;
    e.preventDefault(); var code = input.value.trim(); input.value = ""; if (code) send(code);
  });
  document.getElementById("kiosk-camera").addEventListener("click", function () {
    var video = document.getElementById("kiosk-video");
    if (!navigator.mediaDevices || !window.jsQR) { result.textContent = "此设备不能使用摄像头，请用扫码枪"; return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream; video.hidden = false; video.play();
      var canvas = document.createElement("canvas"), ctx = canvas.getContext("2d"), last = "", lastAt = 0;
      (function tick() {
        if (video.readyState === video.HAVE_ENOUGH_DATA) {
          canvas.width = video.videoWidth; canvas.height = video.videoHeight;
          ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
          var found = jsQR(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
          if (found && found.data && (found.data !== last || Date.now() - lastAt > 5000)) {
            last = found.data; lastAt = Date.now(); send(found.data);
          }
        }
        requestAnimationFrame(tick);
      })();
    }).catch(function () { result.textContent = "无法打开摄像头，请用扫码枪"; });
  });
})();
