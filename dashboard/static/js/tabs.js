// Tabs: buttons [data-tab=name] show #name-panel and hide the others.
import { $$ } from "./dom.js";

export function setupTabs(onChange) {
  const buttons = $$("[data-tab]");
  function show(name) {
    for (const button of buttons) {
      const selected = button.getAttribute("data-tab") === name;
      button.setAttribute("aria-selected", String(selected));
      button.classList.toggle("active", selected);
      const panel = document.getElementById(`${button.getAttribute("data-tab")}-panel`);
      if (panel) panel.hidden = !selected;
    }
    onChange?.(name);
  }
  for (const button of buttons) button.addEventListener("click", () => show(button.getAttribute("data-tab")));
  const first = buttons.find((b) => b.getAttribute("aria-selected") === "true") || buttons[0];
  if (first) show(first.getAttribute("data-tab"));
  return show;
}
