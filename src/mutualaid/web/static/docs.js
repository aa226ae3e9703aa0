// Starts Swagger UI on /docs (kept out of the page so the CSP can forbid inline scripts).
(function () {
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: root.dataset.openapi, dom_id: "#swagger-ui" });
})();
