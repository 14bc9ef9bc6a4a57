/**
 * Hostile delta headers (issue 22, items 3 and 4): every structural bound of the header guard,
 * in the outer safetensors header and in the JSON strings nested in its metadata, refuses the
 * file with DS_ERR_DELTA_HEADER_LIMIT before JSON.parse runs; and no error message quotes
 * untrusted header content unbounded (a 10 M-dimension shape once gave a 30 MB 422 body).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeDelta, encodeDelta } from '../../../src/deltas/format/delta-file.js';
import { DELTA_HEADER_LIMITS } from '../../../src/deltas/format/header-guard.js';
import { parseSafetensors } from '../../../src/deltas/format/safetensors.js';
import { hasCode } from '../../helpers/errors.js';
import { FINGERPRINT, rebuild, rewriteHeader, sampleBaseShapes, sampleDelta } from './fixtures.js';

/** A message may name what was wrong, never carry the hostile content itself. */
const MAX_MESSAGE_CHARS = 1000;

function rawFile(header: string): Uint8Array {
  const bytes = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes.length), true);
  out.set(bytes, 8);
  return out;
}

function refused(file: Uint8Array, code: string, pattern: RegExp, options = {}): void {
  assert.throws(
    () => decodeDelta(file, options),
    hasCode(code, (error) => {
      assert.match(error.message, pattern);
      assert.ok(error.message.length < MAX_MESSAGE_CHARS, `message of ${error.message.length} characters`);
      assert.equal(error.statusCode, 422);
    }),
  );
}

const valid = () => encodeDelta(sampleDelta());

/** The valid sample file with its `tensors` metadata (a JSON string) replaced by `text`. */
function withTensorsJson(text: string): Uint8Array {
  return rebuild(valid(), (_entries, metadata) => {
    metadata.tensors = text;
  });
}

describe('header guard: each bound refuses a hostile outer header before parsing', () => {
  const L = DELTA_HEADER_LIMITS;
  it('nesting 1 M levels deep', () => {
    refused(rawFile('{"a":'.repeat(1_000_000) + '1' + '}'.repeat(1_000_000)), 'DS_ERR_DELTA_HEADER_LIMIT', /nest/);
    refused(rawFile('{"a":' + '['.repeat(1_000_000)), 'DS_ERR_DELTA_HEADER_LIMIT', new RegExp(`${L.maxDepth} levels`));
  });
  it('300 k empty entries', () => {
    const entries = Array.from({ length: 300_000 }, (_, i) => `"t${i}":{}`).join(',');
    refused(rawFile(`{${entries}}`), 'DS_ERR_DELTA_HEADER_LIMIT', new RegExp(`more than ${L.maxEntries} entries`));
  });
  it('a 2 M-character tensor name', () => {
    const name = 'w'.repeat(2_000_000);
    const header = JSON.stringify({ [name]: { dtype: 'F32', shape: [0], data_offsets: [0, 0] } });
    refused(
      rawFile(header),
      'DS_ERR_DELTA_HEADER_LIMIT',
      new RegExp(`name of 2000000 bytes .*at most ${L.maxNameBytes}`),
    );
  });
  it('a 1 M-dimension shape', () => {
    const header = JSON.stringify({ t: { dtype: 'F32', shape: new Array(1_000_000).fill(1), data_offsets: [0, 4] } });
    refused(rawFile(header), 'DS_ERR_DELTA_HEADER_LIMIT', new RegExp(`more than ${L.maxArrayItems} items`));
  });
  it('a 100 k-digit number', () => {
    const header = `{"t":{"dtype":"F32","shape":[${'9'.repeat(100_000)}],"data_offsets":[0,4]}}`;
    refused(rawFile(header), 'DS_ERR_DELTA_HEADER_LIMIT', /number of 100000 characters/);
  });
  it('a header over the byte limit', () => {
    const header = `{"__metadata__":{"x":"${'y'.repeat(L.maxBytes)}"}}`;
    refused(rawFile(header), 'DS_ERR_DELTA_HEADER_LIMIT', new RegExp(`at most ${L.maxBytes}`));
  });
  it('a header just inside every bound still parses', () => {
    const name = 'n'.repeat(L.maxNameBytes);
    const header = JSON.stringify({
      [name]: { dtype: 'F32', shape: new Array(L.maxArrayItems).fill(1), data_offsets: [0, 4] },
    });
    const file = new Uint8Array([...rawFile(header), 0, 0, 0, 0]);
    assert.equal(parseSafetensors(file).tensors.get(name)?.shape.length, L.maxArrayItems);
  });
});

describe('header guard: the JSON strings nested in the metadata are bounded the same way', () => {
  it('tensors nested 1 M deep, with 300 k entries, a 1 M-dimension shape, a 2 M-character name', () => {
    refused(withTensorsJson('['.repeat(1_000_000)), 'DS_ERR_DELTA_HEADER_LIMIT', /tensors.*nest/);
    refused(
      withTensorsJson(`{${Array.from({ length: 300_000 }, (_, i) => `"t${i}":{}`).join(',')}}`),
      'DS_ERR_DELTA_HEADER_LIMIT',
      /tensors.*entries/,
    );
    const shape = new Array(1_000_000).fill(7);
    refused(
      withTensorsJson(JSON.stringify({ w: { shape, encoding: 'sparse', rescale: 1 } })),
      'DS_ERR_DELTA_HEADER_LIMIT',
      /tensors.*items/,
    );
    refused(
      withTensorsJson(JSON.stringify({ ['w'.repeat(2_000_000)]: { shape: [1], encoding: 'sparse', rescale: 1 } })),
      'DS_ERR_DELTA_HEADER_LIMIT',
      /tensors.*name/,
    );
  });
  it('a valid delta is unaffected', () => {
    const decoded = decodeDelta(valid(), { baseShapes: sampleBaseShapes(), expectedBaseFingerprint: FINGERPRINT });
    assert.equal(decoded.tensors.length, 3);
  });
});

describe('error messages quote untrusted header content bounded', () => {
  const huge = 'x'.repeat(1_000_000);
  it('a 1 M-character base fingerprint', () => {
    const file = rebuild(valid(), (_e, metadata) => (metadata.base_fingerprint = huge));
    refused(file, 'DS_ERR_DELTA_BASE_MISMATCH', /xxx… \(1000000 characters\)/, {
      expectedBaseFingerprint: FINGERPRINT,
    });
  });
  it('1 M-character metadata values: format, format_version, method, value_dtype, drop_rate, extra', () => {
    for (const key of ['format', 'format_version', 'method', 'value_dtype', 'drop_rate', 'seed']) {
      const file = rebuild(valid(), (_e, metadata) => (metadata[key] = huge));
      refused(file, 'DS_ERR_DELTA_BAD_METADATA', /1000000 characters/);
    }
    const extra = rebuild(valid(), (_e, metadata) => (metadata.extra = JSON.stringify({ [huge.slice(0, 1000)]: 1 })));
    refused(extra, 'DS_ERR_DELTA_BAD_METADATA', /extra\["xxx.*… \(1000 characters\)"?\]/);
  });
  it('a long (but allowed) tensor name, an encoding string, and a dtype string', () => {
    const name = 'w'.repeat(1000);
    refused(
      withTensorsJson(JSON.stringify({ [name]: { shape: [1], encoding: 'sparse', rescale: 1 } })),
      'DS_ERR_DELTA_BAD_TENSOR',
      /www… \(1000 characters\)/,
    );
    refused(
      withTensorsJson(JSON.stringify({ w: { shape: [1], encoding: huge, rescale: 1 } })),
      'DS_ERR_DELTA_BAD_METADATA',
      /1000000 characters/,
    );
    const badDtype = rewriteHeader(valid(), (header) => {
      const first = Object.keys(header).find((k) => k !== '__metadata__')!;
      header[first]!.dtype = huge;
      return header;
    });
    refused(badDtype, 'DS_ERR_ST_UNKNOWN_DTYPE', /1000000 characters/);
  });
});
