// Own data as text: parse a CSV a person uploads or pastes into points [x1, x2, label], and
// say exactly which line is wrong and why. Pure functions, no DOM.

export const MAX_CLASSES = 5;
export const MIN_POINTS = 4;
export const MAX_COORDINATE = 1e4;

class LineError extends Error {
  constructor(line, message) {
    super(`Line ${line}: ${message}`);
    this.line = line;
  }
}

const unquote = (cell) => cell.trim().replace(/^"(.*)"$/s, "$1").trim();
const isNumber = (text) => text !== "" && Number.isFinite(Number(text));
const SPLITS = new Set(["train", "test"]);

function coordinate(text, name, line) {
  if (!isNumber(text)) throw new LineError(line, `${name} "${text}" is not a number.`);
  const value = Number(text);
  if (Math.abs(value) > MAX_COORDINATE) {
    throw new LineError(line, `${name} ${text} is outside ±${MAX_COORDINATE}.`);
  }
  return value;
}

// The rows of the text: [lineNumber, cells], blank lines skipped. A first row whose x1 or x2
// is not a number is a header.
function rows(text) {
  const out = [];
  let header = null;
  text.split(/\r\n|\n|\r/).forEach((raw, i) => {
    if (raw.trim() === "") return;
    const cells = raw.split(/[,;\t]/).map(unquote);
    if (!out.length && !header && !(isNumber(cells[0]) && isNumber(cells[1] ?? ""))) {
      header = cells;
      return;
    }
    out.push([i + 1, cells]);
  });
  return { header, rows: out };
}

/**
 * Labels as classes: integers 0..K-1 stay as they are; anything else (names, or integers
 * that are not 0..K-1) becomes classes in order of first appearance.
 * @returns {{classes: number[], names: string[] | null}} names[k] = the label of class k
 */
function classesOf(labels, lines) {
  const distinct = [...new Set(labels)];
  const ints = distinct.every((l) => /^\d+$/.test(l)) ? distinct.map(Number) : null;
  if (ints && Math.max(...ints) === ints.length - 1 && ints.length <= MAX_CLASSES) {
    return { classes: labels.map(Number), names: null };
  }
  if (distinct.length > MAX_CLASSES) {
    const sixth = distinct[MAX_CLASSES];
    const line = lines[labels.indexOf(sixth)];
    throw new LineError(
      line,
      `label "${sixth}" would be class ${MAX_CLASSES + 1}; at most ${MAX_CLASSES} classes.`,
    );
  }
  const index = new Map(distinct.map((name, k) => [name, k]));
  return { classes: labels.map((l) => index.get(l)), names: distinct };
}

/**
 * Parse CSV text: columns x1, x2, label, and optionally split (train/test, as a downloaded
 * file has it; the split is drawn again from the data seed). A header row is optional.
 * @param {string} text
 * @param {number} maxPoints  the server's limit
 * @returns {{points: number[][], names: string[] | null} | {error: string, line?: number}}
 */
export function parseCsv(text, maxPoints) {
  try {
    const { header, rows: body } = rows(String(text));
    if (header && header.length !== 3 && !(header.length === 4 && header[3] === "split")) {
      throw new LineError(1, `expected 3 columns (x1, x2, label), found ${header.length}.`);
    }
    if (body.length > maxPoints) {
      throw new LineError(body[maxPoints][0], `more than ${maxPoints} points (the limit).`);
    }
    const xy = [];
    const labels = [];
    for (const [line, cells] of body) {
      const withSplit = cells.length === 4 && SPLITS.has(cells[3].toLowerCase());
      if (cells.length !== 3 && !withSplit) {
        throw new LineError(line, `expected 3 columns (x1, x2, label), found ${cells.length}.`);
      }
      const x1 = coordinate(cells[0], "x1", line);
      const x2 = coordinate(cells[1], "x2", line);
      if (cells[2] === "") throw new LineError(line, "the label is empty.");
      xy.push([x1, x2]);
      labels.push(cells[2]);
    }
    if (xy.length < MIN_POINTS) {
      return { error: `At least ${MIN_POINTS} points are needed; found ${xy.length}.` };
    }
    const { classes, names } = classesOf(labels, body.map(([line]) => line));
    if (new Set(classes).size < 2) {
      return { error: `At least 2 classes are needed; every point has label "${labels[0]}".` };
    }
    return { points: xy.map(([a, b], i) => [a, b, classes[i]]), names };
  } catch (err) {
    if (err instanceof LineError) return { error: err.message, line: err.line };
    throw err;
  }
}

/** "x1,x2,label" text of points (for the paste box and tests). */
export function toCsv(points) {
  return ["x1,x2,label", ...points.map((p) => p.join(","))].join("\n");
}
