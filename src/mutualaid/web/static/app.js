/* mutualaid: small enhancements; every page works without this file.
   Resumable evidence upload: the file goes in acknowledged pieces; after a dropped connection the
   browser asks the server how much arrived and continues from there (also after a page reload). */
(function () {
  "use strict";

  function csrf(form) {
    var input = form.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function say(form, key, percent) {
    var text = (form.getAttribute("data-msg-" + key) || "").replace("{percent}", String(percent));
    var status = form.querySelector("[role=status]");
    if (status) { status.textContent = text; }
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  async function call(form, method, url, body, contentType) {
    var headers = { "X-CSRF-Token": csrf(form), "Accept": "application/json" };
    if (contentType) { headers["Content-Type"] = contentType; }
    var response = await fetch(url, { method: method, headers: headers, body: body,
                                      credentials: "same-origin" });
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.status >= 500 || data === null) { throw new Error("network"); }
    return { ok: response.ok, data: data };
  }

  function showError(form, data) {
    var error = (data && data.error) || {};
    var box = form.querySelector("[data-upload-error]");
    if (!box) {
      box = document.createElement("p");
      box.className = "field-error";
      box.setAttribute("role", "alert");
      box.setAttribute("data-upload-error", "");
      form.querySelector("[data-progress]").before(box);
    }
    box.textContent = error.message || "";
  }

  async function upload(form, file) {
    var base = form.getAttribute("data-resumable");
    var label = (form.querySelector("input[name=label]") || {}).value || "";
    var key = "upload:" + base + ":" + file.name + ":" + file.size + ":" + file.lastModified;
    var progress = form.querySelector("progress");
    form.querySelector("[data-progress]").hidden = false;
    var state = null;
    var saved = window.localStorage ? localStorage.getItem(key) : null;
    if (saved) {
      try { state = (await call(form, "GET", base + "/" + saved)).data; } catch (e) { state = null; }
      if (!state || state.error) { state = null; }
    }
    if (!state) {
      var start = new URLSearchParams({ size: String(file.size), label: label,
                                        media_type: file.type || "application/octet-stream" });
      var made = await call(form, "POST", base, start.toString(), "application/x-www-form-urlencoded");
      if (!made.ok) { showError(form, made.data); return; }
      state = made.data;
      if (window.localStorage) { localStorage.setItem(key, state.upload_id); }
    }
    var failures = 0;
    while (state.received < state.size) {
      var percent = Math.floor(100 * state.received / state.size);
      progress.value = percent;
      say(form, failures ? "waiting" : "sending", percent);
      var piece = file.slice(state.received, Math.min(state.size, state.received + state.piece_bytes));
      try {
        var sent = await call(form, "PUT", base + "/" + state.upload_id + "?offset=" + state.received,
                              piece, "application/octet-stream");
        if (!sent.ok && !(sent.data.error && sent.data.error.received !== undefined)) {
          showError(form, sent.data); return;
        }
        state.received = sent.ok ? sent.data.received : sent.data.error.received;
        failures = 0;
      } catch (e) {
        failures += 1;
        if (failures > 30) { say(form, "failed", percent); return; }
        say(form, "waiting", percent);
        await sleep(Math.min(30000, 1000 * Math.pow(2, Math.min(failures, 5))));
        try { state.received = (await call(form, "GET", base + "/" + state.upload_id)).data.received; }
        catch (e2) { /* still offline: try again */ }
      }
    }
    progress.value = 100;
    say(form, "finishing", 100);
    var done = await call(form, "POST", base + "/" + state.upload_id + "/finish", "", "application/x-www-form-urlencoded");
    if (window.localStorage) { localStorage.removeItem(key); }
    if (!done.ok) { showError(form, done.data); return; }
    window.location.assign(done.data.redirect);
  }

  function enhance(form) {
    form.addEventListener("submit", function (event) {
      var input = form.querySelector("input[type=file]");
      var file = input && input.files && input.files[0];
      if (!file || !window.fetch || !window.Promise || !file.slice) { return; }
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      upload(form, file).catch(function () {
        say(form, "failed", 0);
      }).finally(function () { button.disabled = false; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form[data-resumable]");
    for (var i = 0; i < forms.length; i += 1) { enhance(forms[i]); }
  });
  /* A long GET form (the forecast) says that it is running and for how long, until the answer
     replaces the page. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-running-form")) { return; }
    var box = form.querySelector("[data-running]");
    var counter = form.querySelector("[data-seconds]");
    if (!box) { return; }
    box.hidden = false;
    var began = Date.now();
    setInterval(function () {
      var seconds = String(Math.round((Date.now() - began) / 1000));
      if (counter) { counter.textContent = counter.getAttribute("data-text").replace("{seconds}", seconds); }
    }, 1000);
  });
})();

/* A link to a folded list (…#illnesses) unfolds it. */
(function () {
  "use strict";
  function unfold() {
    if (!location.hash) { return; }
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    var folded = target && (target.tagName === "DETAILS" ? target : target.nextElementSibling);
    if (folded && folded.tagName === "DETAILS") { folded.open = true; }
  }
  window.addEventListener("hashchange", unfold);
  document.addEventListener("DOMContentLoaded", unfold);
}());
