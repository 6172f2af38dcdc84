/** The page's inline stylesheet (no external asset: the page works offline and under a strict CSP). */
export const CSS = `
*,*::before,*::after{box-sizing:border-box}
:root{color-scheme:light;--text:#111827;--muted:#4b5563;--line:#e5e7eb;--bg:#f3f4f6;--card:#fff;--accent:#1d4ed8}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 40px}
h1{font-size:26px;line-height:1.2;margin:0;font-weight:650;letter-spacing:-.01em}
h2{font-size:17px;margin:0 0 12px;font-weight:650;display:flex;align-items:center;gap:8px}
h3{font-size:15px;margin:0}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;background:#f3f4f6;border-radius:4px;padding:1px 5px;color:#1f2937;overflow-wrap:anywhere}
td code,.code{white-space:nowrap}
.muted{color:var(--muted)}
.small{font-size:12.5px}
.nowrap{white-space:nowrap}
.sep,.dot{color:#9ca3af;margin:0 2px}
.page-header{margin-bottom:20px}
.eyebrow{margin:0 0 2px;font-size:12px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:var(--accent)}
.title-row{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;flex-wrap:wrap}
.facts{margin:10px 0 0;color:#374151}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;line-height:20px;white-space:nowrap;vertical-align:middle}
.badge-lg{font-size:14px;padding:4px 14px;line-height:22px}
.banner{margin:12px 0 0;padding:10px 14px;border-radius:8px;border:1px solid}
.banner-info{background:#eff6ff;border-color:#bfdbfe;color:#1e3a8a}
.banner-bad{background:#fef2f2;border-color:#fecaca;color:#7f1d1d}
.banner-warn{background:#fefce8;border-color:#fde68a;color:#713f12}
.banner ul{margin:6px 0 0;padding-left:20px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:20px}
.stat{background:var(--card);border:1px solid var(--line);border-top:4px solid #d1d5db;border-radius:10px;padding:12px 16px}
.stat-label{font-size:12.5px;font-weight:600;color:var(--muted)}
.stat-value{font-size:30px;font-weight:700;line-height:1.15;margin:2px 0;font-variant-numeric:tabular-nums}
.stat-note{font-size:12.5px;color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 22px;margin-bottom:20px;box-shadow:0 1px 2px rgba(17,24,39,.04)}
.count{display:inline-block;min-width:24px;padding:0 8px;border-radius:999px;background:#e5e7eb;color:#1f2937;font-size:12.5px;font-weight:650;line-height:22px;text-align:center}
.section-intro{margin:-6px 0 14px;color:var(--muted)}
.all-clear{margin:0;padding:12px 14px;border-radius:8px;background:#f0fdf4;color:#166534;border:1px solid #bbf7d0}
.people{list-style:none;margin:0;padding:0;display:grid;gap:12px}
.person{min-width:0;border:1px solid var(--line);border-left:5px solid #9ca3af;border-radius:8px;padding:12px 16px;background:#fcfcfd}
.person-head{display:flex;align-items:center;gap:8px;flex-wrap:wrap}
.person-name{font-size:15.5px;margin-right:4px}
.where{margin:2px 0 8px;color:#374151}
.diag{display:grid;grid-template-columns:88px minmax(0,1fr);gap:4px 12px;margin:0}
.diag dt{font-weight:600;color:var(--muted);font-size:12.5px;padding-top:1px;text-transform:uppercase;letter-spacing:.04em}
.diag dd{margin:0}
.diag dd.next-step,.diag dd.error-text{border-radius:4px;padding:3px 8px;margin-left:-8px}
.diag dd.next-step{font-weight:500;color:#1e3a8a;background:#eff6ff}
.error-text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px;color:#7f1d1d;background:#fef2f2;overflow-wrap:anywhere}
.ids{margin:8px 0 0;font-size:12px;color:var(--muted)}
.dist{display:flex;height:14px;border-radius:999px;overflow:hidden;background:#e5e7eb;margin:2px 0 10px}
.dist span{display:block;min-width:3px}
.dist span+span{border-left:2px solid #fff}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:6px 18px;padding:0;margin:0 0 14px}
.legend li{display:flex;align-items:center;gap:6px}
.legend li.zero{color:#6b7280}
.legend li.zero .swatch{opacity:.35}
.swatch{display:inline-block;width:10px;height:10px;border-radius:3px;flex:none}
.group{margin-top:16px}
.group-head{display:flex;align-items:center;gap:8px;font-size:15px}
.group-meaning{margin:2px 0 6px 18px;color:var(--muted);font-size:13px}
.table-wrap{overflow-x:auto}
table{width:100%;border-collapse:collapse}
table.fixed{table-layout:fixed;min-width:760px}
.c-conn{width:38%}.c-where{width:20%}.c-action{width:13%}.c-outcome{width:11%}.c-ends{width:18%}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;background:#f9fafb;border-bottom:1px solid #d1d5db}
tbody tr:last-child td,tbody tr:last-child th{border-bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.conn{display:block;font-weight:600;word-break:break-word}
.reason{display:block;color:var(--muted);font-size:12.5px;font-weight:400}
.tag{display:inline-block;font-size:11px;font-weight:600;color:#1e40af;background:#dbeafe;border-radius:4px;padding:0 5px;vertical-align:1px}
tr.current td{background:#f8fafc}
.timeline th[scope=row]{font-weight:400;width:30%}
.timeline td,.timeline th{vertical-align:middle}
.track-cell{width:46%;min-width:260px}
.track{position:relative;height:22px;background:#f3f4f6;border-radius:4px}
.tick{position:absolute;top:0;bottom:0;width:0;border-left:1px dashed #9ca3af}
.tick-now{border-left:2px solid #374151}
.bar{position:absolute;left:0;top:5px;height:12px;border-radius:0 6px 6px 0;min-width:4px}
.overdue{position:absolute;left:4px;top:2px;font-size:11px;font-weight:700;line-height:16px;padding:0 6px;border-radius:4px;border:1px solid;text-transform:uppercase;letter-spacing:.04em}
.axis{position:relative;height:16px}
.axis-label{position:absolute;transform:translateX(-50%);white-space:nowrap;font-size:11.5px;text-transform:none;letter-spacing:0}
.axis-label:first-child,.axis-label:nth-child(2){transform:none;padding-left:3px}
.axis-label:last-child{transform:translateX(-100%)}
.days{font-weight:600}
.empty{text-align:center;padding:48px 24px}
.empty h2{justify-content:center;font-size:22px}
.empty p{max-width:560px;margin:0 auto;color:#374151}
footer{color:var(--muted);font-size:12.5px;text-align:center;margin-top:8px}
@media (max-width:720px){main{padding:16px 12px}.diag{grid-template-columns:minmax(0,1fr)}.diag dd.next-step,.diag dd.error-text{margin-left:0}.track-cell{min-width:160px}}
`;
