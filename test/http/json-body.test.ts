/** The nesting scan in front of the JSON body parser: brackets are counted outside strings only. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nestedDeeperThan } from '../../src/http/json-body.js';

test('nesting is counted across arrays and objects, and refused only past the limit', () => {
  const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
  assert.equal(nestedDeeperThan(nested(64), 64), false);
  assert.equal(nestedDeeperThan(nested(65), 64), true);
  assert.equal(nestedDeeperThan('{"a":'.repeat(65) + '1' + '}'.repeat(65), 64), true);
  assert.equal(nestedDeeperThan('[[1],[2],[3]]'.repeat(1000), 2), false, 'siblings do not add up');
  assert.equal(nestedDeeperThan('['.repeat(100), 64), true, 'unclosed: refused at the first level past the limit');
});

test('brackets inside strings, escaped quotes included, are not nesting', () => {
  for (const value of ['[[[[', 'a"b[[[', '\\', '\\\\[[[[', '"]]]]', '{{{{']) {
    const text = JSON.stringify({ id: value.repeat(40), inputs: [[1]] });
    assert.equal(nestedDeeperThan(text, 3), false, text);
  }
  assert.equal(nestedDeeperThan(JSON.stringify(['\\', [[[[1]]]]]), 3), true, 'a string ending in a backslash ends');
  assert.equal(nestedDeeperThan('["unterminated [[[[[[', 3), false, 'left to the parser, which refuses it');
});
