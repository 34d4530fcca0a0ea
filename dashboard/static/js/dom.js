// The one way this dashboard builds DOM. Text is always a text node and attributes are
// set with setAttribute, so device-supplied strings (names, barcodes, messages) are never
// parsed as HTML. URL-valued attributes are refused: nothing here links anywhere by data.

const URL_ATTRIBUTES = new Set([
  "href", "src", "srcset", "action", "formaction", "xlink:href", "poster", "background",
  "style", // inline style is refused by the CSP anyway; use classes or element.style
]);
const PROPERTIES = new Set(["value", "checked", "selected", "disabled", "hidden", "min", "max", "step"]);

/** el("button", {class: "x", "data-id": id, onclick: f}, "text", childNode, [more]) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (URL_ATTRIBUTES.has(name.toLowerCase()) || name.toLowerCase().startsWith("on")) {
      throw new Error(`el(): attribute ${name} is not allowed`);
    } else if (PROPERTIES.has(name)) {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

/** Append strings (as text) and nodes, flattening arrays and skipping null/false. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** Set an element's text (textContent: never HTML). */
export function setText(node, value) {
  node.textContent = value === null || value === undefined ? "" : String(value);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** CSS.escape for attribute selectors built from data. */
export function attrSelector(name, value) {
  return `[${name}="${CSS.escape(String(value))}"]`;
}
