/**
 * A client's value as an error message may quote it: short (a 5,000-digit number or a long row is
 * not echoed whole), and never an error of its own. `JSON.stringify` recurses, so a value nested
 * tens of thousands of levels deep (a few hundred KB of `[[[[…]]]]`, well inside the body limit)
 * throws a RangeError: that was a 500 for a client mistake.
 */
export function describeValue(value: unknown, maxLength = 40): string {
  let text: string;
  if (typeof value === 'number' && !Number.isFinite(value)) text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Array.isArray(value) ? 'an array nested too deeply to show' : 'an object nested too deeply to show';
    }
  }
  return text.length > maxLength ? `${text.slice(0, maxLength)}… (${text.length} characters)` : text;
}
