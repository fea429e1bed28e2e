//! `GET /docs`: a small self-contained page that renders `/openapi.json` (no CDN, works
//! offline): endpoints by tag, their parameters, bodies, responses and schemas.

use actix_web::HttpResponse;

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nashub API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#14213d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
h2{margin:28px 0 8px;text-transform:capitalize}
details{background:#fff;border:1px solid #d8dde3;border-radius:6px;margin:6px 0}
summary{cursor:pointer;padding:8px 12px;display:flex;gap:10px;align-items:center}
.m{font:600 12px monospace;text-transform:uppercase;padding:2px 8px;border-radius:4px;color:#fff;min-width:52px;text-align:center}
.get{background:#2b7a4b}.post{background:#1d5fa8}.patch{background:#a8661d}.put{background:#6b3fa0}.delete{background:#a83232}
code,pre{font-family:ui-monospace,monospace}pre{background:#f1f3f5;padding:8px;border-radius:4px;overflow:auto;font-size:12px}
.body{padding:4px 14px 12px}.lock{color:#a83232;font-size:12px}table{border-collapse:collapse}td{padding:2px 10px 2px 0;vertical-align:top}
</style></head><body>
<header><h1>nashub API</h1><div id="info"></div></header>
<main id="root">Loading /openapi.json…</main>
<script>
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const refName = s => s && s.$ref ? s.$ref.split('/').pop() : null;
fetch('/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('info').textContent = doc.info.description + ' — version ' + doc.info.version;
  const schemas = doc.components.schemas, byTag = {};
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops)) (byTag[op.tags[0]] ||= []).push({path, method, op});
  let html = '';
  for (const [tag, list] of Object.entries(byTag)) {
    html += `<h2>${esc(tag)}</h2>`;
    for (const {path, method, op} of list) {
      const locked = op.security && op.security.length ? '<span class="lock">token</span>' : '';
      let body = '<div class="body">';
      if (op.parameters.length) body += '<b>Parameters</b><table>' + op.parameters.map(p =>
        `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}${p.required ? ', required' : ''}</td></tr>`).join('') + '</table>';
      const req = op.requestBody && refName(op.requestBody.content['application/json'].schema);
      if (req) body += `<b>Body</b> <code>${esc(req)}</code><pre>${esc(JSON.stringify(schemas[req], null, 2))}</pre>`;
      body += '<b>Responses</b><table>' + Object.entries(op.responses).map(([code, r]) => {
        const s = r.content && refName(r.content['application/json'].schema);
        return `<tr><td><code>${code}</code></td><td>${esc(r.description)}${s ? ' — <code>' + esc(s) + '</code>' : ''}</td></tr>`;
      }).join('') + '</table></div>';
      html += `<details><summary><span class="m ${method}">${method}</span><code>${esc(path)}</code> ${esc(op.summary)} ${locked}</summary>${body}</details>`;
    }
  }
  html += '<h2>Schemas</h2>' + Object.entries(schemas).map(([n, s]) =>
    `<details><summary><code>${esc(n)}</code></summary><div class="body"><pre>${esc(JSON.stringify(s, null, 2))}</pre></div></details>`).join('');
  document.getElementById('root').innerHTML = html;
}).catch(e => { document.getElementById('root').textContent = 'Cannot load /openapi.json: ' + e; });
</script></body></html>"#;

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}
