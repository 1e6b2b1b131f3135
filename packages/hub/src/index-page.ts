/**
 * A first page until the console (packages/web) lands: log in, see the fleet.
 * It uses only the public API, as the console will.
 */
export const INDEX_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tether</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin-top:1rem}td,th{border-bottom:1px solid #ddd;padding:.35rem .8rem;text-align:left}
.on{color:#080}.off{color:#a00}form{display:flex;gap:.5rem}#err{color:#a00}
</style></head><body>
<h1>Tether</h1>
<form id="login" hidden><label>User <input id="u" value="admin" autocomplete="username"></label>
<label>Password <input id="p" type="password" autocomplete="current-password"></label><button>Log in</button></form>
<p id="err"></p>
<div id="fleet" hidden><p id="count"></p><table><thead><tr><th>Host</th><th>Status</th><th>OS</th><th>Kernel</th><th>Arch</th><th>CPUs</th><th>Memory</th><th>Addresses</th><th>Labels</th></tr></thead><tbody id="rows"></tbody></table>
<p><a href="/api/docs">API documentation</a></p></div>
<script>
const $=(id)=>document.getElementById(id);
const esc=(s)=>String(s).replace(/[&<>"']/g,(c)=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function load(){
  const r=await fetch('/api/v1/hosts',{credentials:'same-origin'});
  if(r.status===401){$('login').hidden=false;$('fleet').hidden=true;return;}
  const d=await r.json();$('login').hidden=true;$('fleet').hidden=false;
  $('count').textContent=d.online+' of '+d.total+' hosts online';
  $('rows').innerHTML=d.hosts.map(h=>'<tr><td>'+esc(h.hostname)+'</td><td class="'+(h.online?'on">online':'off">offline')+'</td><td>'+esc(h.facts.os.pretty||h.facts.os.name)+'</td><td>'+esc(h.facts.kernel)+'</td><td>'+esc(h.facts.arch)+'</td><td>'+h.facts.cpu.logicalCores+'</td><td>'+(h.facts.memoryBytes/1073741824).toFixed(1)+' GiB</td><td>'+esc(h.facts.ips.join(', '))+'</td><td>'+esc(Object.entries(h.labels).map(([k,v])=>k+'='+v).join(', '))+'</td></tr>').join('');
}
$('login').addEventListener('submit',async(e)=>{e.preventDefault();$('err').textContent='';
  const body={username:$('u').value,password:$('p').value};
  let r=await fetch('/api/v1/auth/login',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(body)});
  if(r.status===401&&(await r.clone().json()).error==='totp_required'){const code=prompt('One-time code from your authenticator app (or a recovery code)');
    if(code)r=await fetch('/api/v1/auth/login',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({...body,code})});}
  if(!r.ok){$('err').textContent=(await r.json()).message;return;} load();});
load();setInterval(load,5000);
</script></body></html>`;
