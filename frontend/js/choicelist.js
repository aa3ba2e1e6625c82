// A list of names from a fixed set (model.features) as checkboxes, one per choice, behind
// the same `value` text the form reads from every input ("x1, x2, x1_sq"), so the form,
// the link and the schema's validation treat it like any other field.

const LABELS = {
  x1: "x₁",
  x2: "x₂",
  x1_sq: "x₁²",
  x2_sq: "x₂²",
  x1_x2: "x₁·x₂",
  sin_x1: "sin x₁",
  sin_x2: "sin x₂",
};

const splitNames = (text) =>
  String(text)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * A group of checkboxes with `value` (text) like an <input>, and "input" events when a box
 * changes. A link's text is kept verbatim (order, unknown names, duplicates) until a box is
 * clicked, so an invalid link shows its error instead of being silently repaired; a click
 * gives the checked names in the choices' order.
 * @param {{key: string, choices: string[]}} field  an "enum-list" field descriptor
 */
export function buildChoiceList(field) {
  const group = document.createElement("div");
  group.className = "choice-list";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", field.title);
  const boxes = field.choices.map((choice) => {
    const label = document.createElement("label");
    label.className = "choice";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = choice;
    box.dataset.choice = choice;
    label.append(box, ` ${LABELS[choice] || choice}`);
    group.append(label);
    return box;
  });
  let text = "";
  const checked = () => boxes.filter((b) => b.checked).map((b) => b.value);
  // "input" (not "change"): it fires first, and the form reads `value` on "input".
  group.addEventListener("input", () => {
    text = checked().join(", ");
  });
  Object.defineProperty(group, "value", {
    get: () => text,
    set: (value) => {
      text = String(value ?? "");
      const names = new Set(splitNames(text));
      for (const box of boxes) box.checked = names.has(box.value);
    },
  });
  group.focus = () => (boxes.find((b) => b.checked) || boxes[0])?.focus();
  return group;
}
