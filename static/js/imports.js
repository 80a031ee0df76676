// The import page: send the file, show a progress bar (the upload, then the rows checked or
// written, as the server reports them batch by batch), then the report. Without this script the
// form posts as usual and the report comes back on the page.
(function () {
  var form = document.getElementById("import-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var box = document.getElementById("import-progress");
  var bar = box.querySelector("progress"), label = box.querySelector("p");
  var report = document.getElementById("import-report");
  var buttons = form.querySelectorAll("button");

  function show(value, max, text) {
    box.hidden = false;
    if (max) { bar.max = max; bar.value = Math.min(value, max); } else { bar.removeAttribute("value"); }
    label.textContent = text;
  }
  function busy(on) { buttons.forEach(function (b) { b.disabled = on; }); }

  form.addEventListener("submit", function (event) {
    if (!form.file.files.length) return;  // the browser says "please choose a file"
    event.preventDefault();
    var dryRun = event.submitter ? event.submitter.value : "1";
    var verb = dryRun === "0" ? "导入" : "检查";
    if (dryRun === "0" && !window.confirm("确定导入？文件中任何一行有问题时，整个文件都不会写入。")) return;
    var data = new FormData(form);
    data.set("dry_run", dryRun);
    var xhr = new XMLHttpRequest(), seen = 0, finished = false;
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/x-ndjson");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) show(e.loaded, e.total, "上传中 " + Math.round(100 * e.loaded / e.total) + "%");
    };
    xhr.upload.onload = function () { show(0, 0, "上传完成，正在" + verb + "……"); };
    function readLines() {
      var text = xhr.responseText, end;
      while ((end = text.indexOf("\n", seen)) >= 0) {
        var line = text.slice(seen, end); seen = end + 1;
        if (!line) continue;
        var message = JSON.parse(line);
        if (message.error) {
          finished = true; show(0, 1, message.error); report.innerHTML = "";
        } else if (message.html !== undefined) {
          finished = true; show(1, 1, verb + "完成"); report.innerHTML = message.html;
          report.scrollIntoView({ behavior: "smooth" });
        } else {
          var total = Math.max(message.total || 0, message.done);
          show(message.done, total, "已" + verb + " " + message.done + (message.total ? " / " + total : "") + " 行");
        }
      }
    }
    xhr.onprogress = readLines;
    xhr.onload = function () {
      busy(false);
      if (xhr.status !== 200) {
        show(0, 1, xhr.status === 413 ? "文件过大" : "提交失败（" + xhr.status + "），请刷新页面后重试");
        return;
      }
      readLines();
      if (!finished) show(0, 1, "连接中断，未完成；" + (dryRun === "0" ? "本次导入没有写入任何数据。" : "请重试。"));
    };
    xhr.onerror = function () { busy(false); show(0, 1, "网络异常，请重试。未完成的导入不会写入任何数据。"); };
    busy(true);
    show(0, 0, "准备上传……");
    xhr.send(data);
  });
})();
