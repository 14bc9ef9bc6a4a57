import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SeededRng } from '../../src/core/rng.js';
import { decodeOnnxModel, encodeOnnxModel, loadOnnxModel, saveOnnxModel } from '../../src/onnx/model-file.js';
import { onnx } from '../../src/onnx/proto.js';
import { buildSyntheticEncoder, TINY_ENCODER } from '../../src/onnx/synthetic.js';
import { readFloatWeights } from '../../src/onnx/weights.js';
import { runLogits, tokenIds, withTempDir } from './fixtures.js';

const tiny = (): onnx.ModelProto => buildSyntheticEncoder({ ...TINY_ENCODER, seed: 11 });

function assertSameWeights(actual: onnx.IModelProto, expected: onnx.IModelProto): void {
  const a = readFloatWeights(actual);
  const e = readFloatWeights(expected);
  assert.deepEqual([...a.keys()], [...e.keys()]);
  for (const [name, weight] of e) {
    const other = a.get(name)!;
    assert.deepEqual(other.shape, weight.shape, name);
    assert.ok(Buffer.from(other.data.buffer).equals(Buffer.from(weight.data.buffer)), `bytes of ${name} differ`);
  }
}

/** Saves TINY with external data, then lets `edit` rewrite the saved proto and returns the model path. */
async function savedWithExternalData(dir: string, edit?: (model: onnx.ModelProto) => void): Promise<string> {
  const path = join(dir, 'model.onnx');
  await saveOnnxModel(tiny(), path, { externalDataFile: 'model.onnx.data' });
  if (edit) {
    const model = onnx.ModelProto.decode(await readFile(path));
    edit(model);
    await writeFile(path, onnx.ModelProto.encode(model).finish());
  }
  return path;
}

function setLocation(tensorName: string, location: string) {
  return (model: onnx.ModelProto): void => {
    const tensor = model.graph!.initializer!.find((t) => t.name === tensorName)!;
    tensor.externalData = tensor.externalData!.map((e) =>
      e.key === 'location' ? { key: 'location', value: location } : e,
    );
  };
}

const invalid = (message: RegExp) => ({ code: 'DS_ERR_ONNX_INVALID', message });

test('save then load gives back byte-identical weights', async () => {
  await withTempDir(async (dir) => {
    const model = tiny();
    const path = join(dir, 'tiny.onnx');
    await saveOnnxModel(model, path);
    const loaded = await loadOnnxModel(path);
    assertSameWeights(loaded, model);
    assert.equal(loaded.graph!.node!.length, model.graph!.node!.length);
    assertSameWeights(decodeOnnxModel(encodeOnnxModel(model), 'in memory'), model);
  });
});

test('external data: large float weights move out, loading inlines them, ORT agrees', async () => {
  await withTempDir(async (dir) => {
    const model = tiny();
    const path = await savedWithExternalData(dir);

    const stored = onnx.ModelProto.decode(await readFile(path));
    const location = (name: string) => stored.graph!.initializer!.find((t) => t.name === name)!.dataLocation;
    assert.equal(
      location('layer.0.attn.q.weight'),
      onnx.TensorProto.DataLocation.EXTERNAL,
      '32×32 fp32 = 4 KiB goes out',
    );
    assert.notEqual(location('layer.0.attn.q.bias'), onnx.TensorProto.DataLocation.EXTERNAL, '128 B stays inline');
    assert.ok(
      (await stat(path)).size * 4 < encodeOnnxModel(model).byteLength,
      'the model file keeps only small tensors',
    );

    const loaded = await loadOnnxModel(path);
    assertSameWeights(loaded, model);
    for (const t of loaded.graph!.initializer!)
      assert.notEqual(t.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL, t.name!);

    const ids = tokenIds(2, 5, TINY_ENCODER.vocab);
    const fromOriginal = await runLogits(encodeOnnxModel(model), ids);
    const fromExternalFile = await runLogits(path, ids);
    const fromLoaded = await runLogits(encodeOnnxModel(loaded), ids);
    assert.deepEqual(fromExternalFile.data, fromOriginal.data);
    assert.deepEqual(fromLoaded.data, fromOriginal.data);
  });
});

test('decodeOnnxModel reads external data only when given a base folder', async () => {
  await withTempDir(async (dir) => {
    const path = await savedWithExternalData(dir);
    const bytes = await readFile(path);
    assert.throws(
      () => decodeOnnxModel(bytes, 'model.onnx'),
      invalid(/initializer ".+" is stored in external file "model\.onnx\.data" but no base folder/),
    );
    assertSameWeights(decodeOnnxModel(bytes, 'model.onnx', { baseDir: dir }), tiny());
  });
});

test('garbage bytes are refused, never crash the decoder', async () => {
  const rng = new SeededRng(5);
  for (let round = 0; round < 300; round++) {
    const bytes = Uint8Array.from({ length: 1 + rng.nextInt(4096) }, () => rng.nextInt(256));
    assert.throws(
      () => decodeOnnxModel(bytes, `random #${round}`),
      invalid(/not an ONNX protobuf|has no graph|imports no opset|ir_version|initializer/),
    );
  }
  await withTempDir(async (dir) => {
    const path = join(dir, 'random.onnx');
    await writeFile(
      path,
      Uint8Array.from({ length: 1000 }, () => rng.nextInt(256)),
    );
    await assert.rejects(loadOnnxModel(path), {
      code: 'DS_ERR_ONNX_INVALID',
      message: new RegExp(`ONNX model ${path} is invalid: `),
    });
  });
});

test('truncated and empty files are refused with the reason', async () => {
  const bytes = encodeOnnxModel(tiny());
  for (let i = 1; i < 10; i++) {
    const cut = bytes.subarray(0, Math.floor((bytes.length * i) / 10));
    assert.throws(
      () => decodeOnnxModel(cut, `cut at ${cut.length}`),
      invalid(/not an ONNX protobuf \(index out of range|has no graph|imports no opset/),
    );
  }
  await withTempDir(async (dir) => {
    const path = join(dir, 'half.onnx');
    await writeFile(path, bytes.subarray(0, bytes.length >> 1));
    await assert.rejects(loadOnnxModel(path), invalid(/the bytes are not an ONNX protobuf \(index out of range/));
    await writeFile(path, new Uint8Array(0));
    await assert.rejects(loadOnnxModel(path), invalid(/the model has no graph/));
  });
});

test('a missing model file is a read error', async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(loadOnnxModel(join(dir, 'nope.onnx')), {
      code: 'DS_ERR_FILE_READ',
      message: /nope\.onnx.*ENOENT/,
    });
  });
});

test('external data problems are refused, each named', async () => {
  const cases: { name: string; prepare: (dir: string) => Promise<string>; message: RegExp }[] = [
    {
      name: '.. escape',
      prepare: (dir) => savedWithExternalData(dir, setLocation('layer.0.attn.q.weight', '../model.onnx.data')),
      message:
        /initializer "layer\.0\.attn\.q\.weight" \(FLOAT \[32, 32\]\): external data location "\.\.\/model\.onnx\.data" escapes the model's folder/,
    },
    {
      name: 'escape hidden in the middle of the path',
      prepare: (dir) => savedWithExternalData(dir, setLocation('layer.1.attn.v.weight', 'sub/../../x.data')),
      message: /initializer "layer\.1\.attn\.v\.weight" .*"sub\/\.\.\/\.\.\/x\.data" escapes the model's folder/,
    },
    {
      name: 'absolute path',
      prepare: (dir) => savedWithExternalData(dir, setLocation('layer.1.ffn.up.weight', join(dir, 'model.onnx.data'))),
      message: /initializer "layer\.1\.ffn\.up\.weight" .* is an absolute path/,
    },
    {
      name: 'missing file',
      prepare: async (dir) => {
        const path = await savedWithExternalData(dir);
        await unlink(join(dir, 'model.onnx.data'));
        return path;
      },
      message: /external data file "model\.onnx\.data" does not exist/,
    },
    {
      name: 'file too short',
      prepare: async (dir) => {
        const path = await savedWithExternalData(dir);
        await truncate(join(dir, 'model.onnx.data'), 5000);
        return path;
      },
      message:
        /initializer "[^"]+" needs bytes \d+\.\.\d+ of external data file "model\.onnx\.data", which is too short \(5000 bytes\)/,
    },
    {
      name: 'length key disagrees with the shape',
      prepare: (dir) =>
        savedWithExternalData(dir, (model) => {
          const tensor = model.graph!.initializer!.find((t) => t.name === 'layer.0.ffn.down.weight')!;
          tensor.externalData = tensor.externalData!.map((e) =>
            e.key === 'length' ? { key: 'length', value: '8188' } : e,
          );
        }),
      message:
        /initializer "layer\.0\.ffn\.down\.weight" \(FLOAT \[64, 32\]\) has external length 8188 bytes, expected 8192/,
    },
  ];
  for (const c of cases) {
    await withTempDir(async (dir) => {
      await assert.rejects(loadOnnxModel(await c.prepare(dir)), invalid(c.message), c.name);
    });
  }
});

test('initializer data that disagrees with its dims is refused', () => {
  const shortRaw = tiny();
  const bias = shortRaw.graph!.initializer!.find((t) => t.name === 'layer.0.attn.q.bias')!;
  bias.rawData = bias.rawData!.subarray(0, 124);
  assert.throws(
    () => decodeOnnxModel(onnx.ModelProto.encode(shortRaw).finish(), 'short'),
    invalid(/initializer "layer\.0\.attn\.q\.bias" \(FLOAT \[32\]\) has 124 bytes of raw_data, expected 128/),
  );

  const shortFloats = tiny();
  const head = shortFloats.graph!.initializer!.find((t) => t.name === 'classifier.bias')!;
  head.rawData = new Uint8Array(0);
  head.floatData = [1, 2];
  assert.throws(
    () => decodeOnnxModel(onnx.ModelProto.encode(shortFloats).finish(), 'floats'),
    invalid(/initializer "classifier\.bias" \(FLOAT \[3\]\) has 2 values in float_data, expected 3/),
  );

  const empty = tiny();
  empty.graph!.initializer!.find((t) => t.name === 'classifier.bias')!.rawData = new Uint8Array(0);
  assert.throws(
    () => decodeOnnxModel(onnx.ModelProto.encode(empty).finish(), 'empty'),
    invalid(/"classifier\.bias" .* has no data/),
  );
});

test('hostile dims are refused', () => {
  const negative = tiny();
  negative.graph!.initializer!.find((t) => t.name === 'classifier.bias')!.dims = [-1];
  assert.throws(
    () => decodeOnnxModel(onnx.ModelProto.encode(negative).finish(), 'negative'),
    invalid(/initializer "classifier\.bias": dimension 0 is -1, not a non-negative integer/),
  );
  const huge = tiny();
  huge.graph!.initializer!.find((t) => t.name === 'classifier.bias')!.dims = [2 ** 40, 2 ** 40];
  assert.throws(
    () => decodeOnnxModel(onnx.ModelProto.encode(huge).finish(), 'huge'),
    invalid(/initializer "classifier\.bias": shape \[\d+, \d+\] has too many elements/),
  );
});

test('saving refuses an external data file outside the model folder', async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      saveOnnxModel(tiny(), join(dir, 'm.onnx'), { externalDataFile: '../w.bin' }),
      invalid(/cannot save: external data location "\.\.\/w\.bin" escapes/),
    );
    await assert.rejects(
      saveOnnxModel(tiny(), join(dir, 'm.onnx'), { externalDataFile: './m.onnx' }),
      invalid(/cannot save: the external data file "m\.onnx" is the model file itself/),
    );
    const nested = join(dir, 'm.onnx');
    await saveOnnxModel(tiny(), nested, { externalDataFile: 'weights/m.data' });
    assert.equal(readFloatWeights(await loadOnnxModel(nested)).size, readFloatWeights(tiny()).size);
  });
});

test('saving does not modify the model', async () => {
  await withTempDir(async (dir) => {
    const model = tiny();
    const before = Buffer.from(encodeOnnxModel(model));
    await saveOnnxModel(model, join(dir, 'm.onnx'), { externalDataFile: 'm.data' });
    assert.ok(Buffer.from(encodeOnnxModel(model)).equals(before));
  });
});
