// WCAG 2.1 colour arithmetic for tests/test_a11y_states.py, evaluated in the page: relative
// luminance, contrast ratio, translucent backgrounds composited over their ancestors' down to
// the white page; which controls are visible; what a problem is called.
const parse = (text) => {
  const m = /rgba?\(([^)]*)\)/.exec(text || "");
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
};
const over = (top, bottom) => ({
  r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
  b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
const background = (element) => {
  const layers = [];
  for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
    const colour = parse(getComputedStyle(node).backgroundColor);
    if (colour && colour.a > 0) layers.push(colour);
    if (colour && colour.a === 1) break;
  }
  return layers.reverse().reduce((below, layer) => over(layer, below), {r: 255, g: 255, b: 255, a: 1});
};
const luminance = (c) => {
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
};
const ratio = (a, b) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
};
const large = (style) => {
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  return size >= 24 || (bold && size >= 18.66);
};
const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
  + (typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : "")
  + " '" + (e.textContent || e.value || e.getAttribute("aria-label") || "").trim().slice(0, 30) + "'";
const hasText = (e) => (e.textContent || "").trim() !== "" && !["INPUT", "SELECT", "TEXTAREA"].includes(e.tagName)
  || ["SELECT"].includes(e.tagName) || (e.tagName === "INPUT" && !["checkbox", "radio", "file", "color", "range"].includes(e.type));
const textProblem = (e, state) => {
  if (!hasText(e)) return null;
  const style = getComputedStyle(e);
  const fg = over(parse(style.color), background(e));
  const need = large(style) ? 3 : 4.5, got = ratio(fg, background(e));
  return got < need ? `${state} ${name(e)}: text ${got}:1 < ${need}:1` : null;
};
const visible = (e) => {
  const r = e.getBoundingClientRect();
  // checkVisibility: not inside a closed <details> (its content keeps a box in Chromium)
  return r.width > 0 && r.height > 0 && e.checkVisibility({visibilityProperty: true});
};
const CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex='-1'])";
