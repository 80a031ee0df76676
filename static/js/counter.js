// The counter (POS): identify a resident, build a basket, confirm once.
// The Idempotency-Key is made when a basket opens, so a double click, a refresh of the request or
// a retry after a network error never redeems twice: the server answers with the first result.
(function () {
  "use strict";
  var root = document.getElementById("counter");
  if (!root) return;
  var storeId = root.dataset.store;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var $ = function (id) { return document.getElementById(id); };
  var state = { resident: null, code: null, basket: {}, key: newKey(), busy: false };

  function newKey() {
    // crypto.randomUUID needs HTTPS; getRandomValues works on a village LAN over plain HTTP too.
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function say(text) { var m = $("message"); m.textContent = text || ""; m.hidden = !text; }
  function beep(ok) {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator(); osc.frequency.value = ok ? 880 : 220;
      osc.connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.12);
    } catch (e) { /* no sound on this device */ }
  }
  function api(method, url, body, key) {
    var headers = { "Accept": "application/json", "X-CSRFToken": csrf };
    if (body) headers["Content-Type"] = "application/json";
    if (key) headers["Idempotency-Key"] = key;
    return fetch(url, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
                        credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data }; }); });
  }
  // `code`: the personal code the resident showed. It goes with the basket, so the server knows
  // (and audits) that the resident was present; a pick from the name search sends the id, which
  // the server accepts only for residents this store serves. A printed card (MK1.…, for residents
  // without a phone) shows who and the balance; its basket goes by id, like a name search.
  function showResident(person, code) {
    var card = !!code && /^MK1\./i.test(code);
    state.resident = person; state.code = card ? null : (code || null);
    var box = $("resident");
    box.hidden = false;
    box.innerHTML = "";
    var name = document.createElement("b"); name.textContent = person.name;
    var info = document.createElement("div"); info.className = "muted small";
    info.textContent = [person.volunteer_no, person.phone, person.household ? "户 " + person.household : "", person.region]
      .filter(Boolean).join(" · ");
    var bal = document.createElement("div"); bal.className = "balance";
    bal.textContent = "积分余额 " + person.balance;
    box.appendChild(name); box.appendChild(info); box.appendChild(bal);
    if (card) {
      var hint = document.createElement("div"); hint.className = "muted small";
      hint.textContent = "凭会员卡查询（本店服务范围内的居民可直接兑换）";
      box.appendChild(hint);
    }
    beep(true);
    render();
  }
  function lookup(query) {
    say("");
    return api("GET", "/api/v1/stores/" + storeId + "/residents?" + query).then(function (res) {
      if (!res.ok) { say(res.data.detail || "查找失败"); beep(false); return []; }
      return res.data;
    }).catch(function () { say("网络异常，请重试"); return []; });
  }
  $("scan").addEventListener("keydown", function (e) {
    if (e.key !== "Enter") return;
    e.preventDefault();
    var code = this.value.trim(); this.value = "";
    if (code) lookup("code=" + encodeURIComponent(code)).then(function (people) { if (people.length) showResident(people[0], code); });
  });
  $("find-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var q = "name=" + encodeURIComponent($("find-name").value.trim()) + "&phone_tail=" + encodeURIComponent($("find-tail").value.trim());
    lookup(q).then(function (people) {
      var list = $("find-results"); list.innerHTML = "";
      if (!people.length) { list.textContent = "没有找到"; return; }
      people.forEach(function (p) {
        var b = document.createElement("button"); b.type = "button"; b.className = "button button-ghost";
        b.textContent = p.name + " · " + p.phone; b.onclick = function () { showResident(p, null); list.innerHTML = ""; };
        list.appendChild(b);
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".good"), function (btn) {
    btn.addEventListener("click", function () {
      var id = btn.dataset.id, have = state.basket[id] || 0;
      if (have >= Number(btn.dataset.stock)) { say("「" + btn.dataset.name + "」库存不足"); beep(false); return; }
      state.basket[id] = have + 1; render();
    });
    btn.addEventListener("contextmenu", function (e) {  // long press / right click takes one back
      e.preventDefault(); var id = btn.dataset.id;
      if (state.basket[id]) { state.basket[id] -= 1; if (!state.basket[id]) delete state.basket[id]; render(); }
    });
  });
  $("clear-btn").addEventListener("click", function () { state.basket = {}; state.key = newKey(); render(); });
  function total() {
    var sum = 0;
    Object.keys(state.basket).forEach(function (id) {
      sum += state.basket[id] * Number(document.querySelector('.good[data-id="' + id + '"]').dataset.price);
    });
    return sum;
  }
  function render() {
    var sum = total();
    $("total").textContent = sum;
    $("after").textContent = state.resident ? state.resident.balance - sum : "—";
    Array.prototype.forEach.call(document.querySelectorAll(".good"), function (btn) {
      var q = state.basket[btn.dataset.id] || 0, tag = btn.querySelector(".qty");
      tag.textContent = "×" + q; tag.hidden = !q; btn.classList.toggle("picked", q > 0);
    });
    var ok = state.resident && sum > 0 && state.resident.balance >= sum;
    $("confirm-btn").disabled = !ok || state.busy;
    if (state.resident && sum > state.resident.balance) say("积分不足：还差 " + (sum - state.resident.balance) + " 分");
  }
  $("confirm-btn").addEventListener("click", function () {
    if (state.busy) return;
    state.busy = true; render(); say("");
    var lines = Object.keys(state.basket).map(function (id) { return { item_id: Number(id), qty: state.basket[id] }; });
    var who = state.code ? { code: state.code } : { resident_id: state.resident.id };
    who.lines = lines;
    api("POST", "/api/v1/stores/" + storeId + "/redemptions", who, state.key)
      .then(function (res) {
        state.busy = false;
        if (res.ok) { showReceipt(res.data); beep(true); return; }
        // Refused (points, stock, limit): nothing changed; the next try is a new request.
        state.key = newKey(); say(res.data.detail || "兑换失败"); beep(false);
        if (state.code && (res.data.code === "code_expired" || res.data.code === "code_invalid")) {
          // Scan again; a resident this store serves may also go ahead by id with the next confirm.
          state.code = null; say("会员码已失效，请居民刷新后重新扫码（本店居民可直接再点确认）");
        }
        render();
      })
      .catch(function () { state.busy = false; say("网络异常：请再点一次确认，不会重复扣分"); render(); });
  });
  function showReceipt(r) {
    var box = $("receipt"); box.hidden = false; box.innerHTML = "";
    var h = document.createElement("h2"); h.textContent = "兑换成功 · 小票 " + r.receipt_no; box.appendChild(h);
    r.lines.forEach(function (l) {
      var p = document.createElement("div"); p.className = "row";
      p.textContent = l.name + " ×" + l.qty + " · " + l.points + " 分"; box.appendChild(p);
    });
    var t = document.createElement("p"); t.innerHTML = "";
    t.textContent = "合计 " + r.total_points + " 分，余额 " + r.balance_after + " 分"; box.appendChild(t);
    var print = document.createElement("a"); print.className = "button"; print.textContent = "打印小票";
    print.href = root.dataset.receiptUrl.replace(/0$/, String(r.id)); print.target = "_blank"; box.appendChild(print);
    var next = document.createElement("button"); next.type = "button"; next.className = "button button-ghost"; next.textContent = "下一位";
    next.onclick = function () {
      state = { resident: null, code: null, basket: {}, key: newKey(), busy: false };
      $("resident").hidden = true; box.hidden = true; render(); $("scan").focus();
    };
    box.appendChild(next);
    r.lines.forEach(function (l) {  // the shelf shows what is left
      var good = document.querySelector('.good[data-id="' + l.item_id + '"]');
      if (!good) return;
      var left = Number(good.dataset.stock) - l.qty;
      good.dataset.stock = left;
      good.querySelector("small").textContent = "库存 " + left;
      good.disabled = left <= 0;
    });
    state.basket = {}; state.resident.balance = r.balance_after; render();
    var bal = document.querySelector("#resident .balance");
    if (bal) bal.textContent = "积分余额 " + r.balance_after;
    $("confirm-btn").disabled = true;
    box.scrollIntoView({ behavior: "smooth", block: "center" });

  }
  // Camera scanning (needs HTTPS or localhost; a USB scanner works everywhere).
  $("camera-btn").addEventListener("click", function () {
    var video = $("camera");
    if (!navigator.mediaDevices || !window.jsQR) { say("此设备不能使用摄像头扫码，请用扫码枪或手动查找"); return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream; video.hidden = false; video.play();
      var canvas = document.createElement("canvas"), ctx = canvas.getContext("2d");
      (function tick() {
        if (video.readyState === video.HAVE_ENOUGH_DATA) {
          canvas.width = video.videoWidth; canvas.height = video.videoHeight;
          ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
          var found = jsQR(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
          if (found && found.data) {
            stream.getTracks().forEach(function (t) { t.stop(); }); video.hidden = true;
            lookup("code=" + encodeURIComponent(found.data)).then(function (p) { if (p.length) showResident(p[0], found.data); });
            return;
          }
        }
        requestAnimationFrame(tick);
      })();
    }).catch(function () { say("无法打开摄像头，请用扫码枪或手动查找"); });
  });
  render();
})();
