/**
 * Untrusted text in error messages and logs, bounded. A delta header, a request body or a
 * registry entry can hold a string or an array of any size; quoting it whole once turned a
 * 10 M-dimension shape into a 30 MB 422 answer and 30 MB of log (issue 22, item 3). Every piece
 * of client- or file-provided content that reaches a message goes through one of these: the
 * first `maxChars` characters (or `maxItems` items), an ellipsis, and the original size, so the
 * reader still learns what was wrong and how big it was.
 */

/** Characters of one untrusted string kept in a message. */
export const MESSAGE_TEXT_CHARS = 120;
/** Items of one untrusted array kept in a message. */
export const MESSAGE_LIST_ITEMS = 16;

/** `text` cut to `maxChars` characters, with `… (N characters)` when it was longer. */
export function boundText(text: string, maxChars = MESSAGE_TEXT_CHARS): string {
  if (text.length <= maxChars) return text;
  return `${text.slice(0, maxChars)}… (${text.length} characters)`;
}

/** `JSON.stringify(text)`, cut: a quoted string a message can name. */
export function quoteBounded(text: string, maxChars = MESSAGE_TEXT_CHARS): string {
  if (text.length <= maxChars) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, maxChars)).slice(0, -1)}… (${text.length} characters)"`;
}

/** A shape (or any list of numbers) as `[a, b, …]`, at most `maxItems` shown, with the rank when cut. */
export function describeListBounded(values: readonly unknown[], maxItems = MESSAGE_LIST_ITEMS): string {
  const shown = values.slice(0, maxItems).map((value) => jsonBounded(value, 24));
  return values.length <= maxItems ? `[${shown.join(', ')}]` : `[${shown.join(', ')}, … (${values.length} items)]`;
}

/**
 * Any parsed JSON value, described within a bounded size: strings quoted and cut, arrays cut to
 * `maxItems`, objects reduced to their first keys. Never serialises more than it shows.
 */
export function jsonBounded(value: unknown, maxChars = MESSAGE_TEXT_CHARS): string {
  if (typeof value === 'string') return quoteBounded(value, maxChars);
  if (Array.isArray(value)) return describeListBounded(value);
  if (typeof value === 'object' && value !== null) {
    const keys: string[] = [];
    let count = 0;
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      if (keys.length < 4) keys.push(`${quoteBounded(key, 24)}: …`);
      count++;
    }
    return count <= 4 ? `{${keys.join(', ')}}` : `{${keys.join(', ')}, … (${count} keys)}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return boundText(String(value), 40);
  return boundText(typeof value, 40);
}
