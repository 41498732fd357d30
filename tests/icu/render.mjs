// Renders translation strings exactly as Home Assistant's frontend does: its localize()
// builds `new IntlMessageFormat(text, language)` (formatjs, default options) and formats it
// with the placeholders it has. Reads {"key": "text", ...} on stdin; writes, per key, the
// parser's error or the string's placeholders, any other ICU elements, and the text
// formatted with each placeholder replaced by <name>.
import { readFileSync } from "node:fs";
import { IntlMessageFormat } from "intl-messageformat";

const ELEMENT = ["literal", "argument", "number", "date", "time", "select", "plural", "pound", "tag"];

function walk(elements, found) {
  for (const element of elements) {
    const kind = ELEMENT[element.type];
    if (kind === "argument") found.arguments.add(element.value);
    else if (kind !== "literal") found.other.add(kind);
    for (const option of Object.values(element.options ?? {})) walk(option.value, found);
    if (element.children) walk(element.children, found);
  }
}

const strings = JSON.parse(readFileSync(0, "utf8"));
const result = {};
for (const [key, text] of Object.entries(strings)) {
  try {
    const message = new IntlMessageFormat(text, "en");
    const found = { arguments: new Set(), other: new Set() };
    walk(message.getAst(), found);
    const values = Object.fromEntries([...found.arguments].map((name) => [name, `<${name}>`]));
    result[key] = {
      arguments: [...found.arguments].sort(),
      other: [...found.other].sort(),
      formatted: found.other.size ? null : message.format(values),
    };
  } catch (err) {
    result[key] = { error: err.message };
  }
}
process.stdout.write(JSON.stringify(result));
