// Small helpers shared by the chat (app.js) and the Documents panel (documents.js). ES modules, no build step.

/** An element with attributes and children; null/undefined/false attributes and children are left out. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]/g;
const LATIN = /[A-Za-z]/g;

/** The language a text is mostly written in, so the browser picks Chinese glyph forms. */
export function langOf(text) {
  const value = String(text || "");
  const cjk = (value.match(CJK) || []).length;
  const latin = (value.match(LATIN) || []).length;
  return cjk > 0 && cjk * 3 >= latin ? "zh-CN" : "en";
}

/** "Intro › Sizing · Page 3 · Paragraph 2": where a passage sits in its document (title aside). */
export function placeParts(passage) {
  const parts = [];
  const section = Array.isArray(passage.section) ? passage.section.filter(Boolean) : [];
  if (section.length) parts.push(section.join(" › "));
  if (Number.isInteger(passage.page)) parts.push(`Page ${passage.page}`);
  parts.push(`Paragraph ${passage.paragraph}`);
  return parts;
}

/** The API's `{error, detail}` body (or FastAPI's validation list) as {code, detail}. */
export function errorBody(text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.detail === "string") {
      return { code: typeof body.error === "string" ? body.error : "", detail: body.detail };
    }
    if (body && Array.isArray(body.detail)) {
      return { code: "", detail: body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ") };
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return { code: "", detail: String(text || "").trim().slice(0, 300) };
}
