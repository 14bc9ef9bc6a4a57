/**
 * JSON schemas of every route: request validation (ajv, via fastify) and the OpenAPI document
 * (@fastify/swagger). Response schemas also drive serialisation (fast-json-stringify), so they
 * list every property a route returns.
 */

export const errorResponse = {
  type: 'object',
  description: 'Every error: a message saying what was wrong, and a stable code (see the errors table).',
  properties: { error: { type: 'string' }, code: { type: 'string' } },
  required: ['error'],
} as const;

/** 4xx/5xx responses every route may give. */
export const errorResponses = {
  '4xx': errorResponse,
  '5xx': errorResponse,
} as const;

const nameParam = { type: 'string', minLength: 1, maxLength: 256 } as const;
/** Most `outputs` an infer request may name (each at most once). */
export const MAX_REQUESTED_OUTPUTS = 64;

export const modelParams = {
  type: 'object',
  properties: { model_name: nameParam, model_version: nameParam },
  required: ['model_name'],
} as const;

const tensorMetadata = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    datatype: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' } },
  },
} as const;

export const serverMetadataResponse = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    extensions: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const modelMetadataResponse = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    versions: { type: 'array', items: { type: 'string' } },
    platform: { type: 'string' },
    inputs: { type: 'array', items: tensorMetadata },
    outputs: { type: 'array', items: tensorMetadata },
    parameters: {
      type: 'object',
      properties: {
        default_version: { type: 'string' },
        description: { type: 'string' },
        labels: { type: 'array', items: { type: 'string' } },
        num_classes: { type: 'integer' },
        batching: { type: 'string', enum: ['mixed', 'per-task'] },
        batching_reason: { type: 'string' },
      },
    },
  },
} as const;

export const readyResponse = {
  type: 'object',
  properties: { name: { type: 'string' }, version: { type: 'string' }, ready: { type: 'boolean' } },
} as const;

export const liveResponse = { type: 'object', properties: { live: { type: 'boolean' } } } as const;
export const serverReadyResponse = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    registry: {
      type: 'object',
      description:
        'Present with a registry state file: whether this replica matches it. Not synced does not make the replica unready: it serves its last good state.',
      properties: {
        synced: { type: 'boolean' },
        error: { type: ['string', 'null'] },
        lastSyncAt: {
          type: ['string', 'null'],
          description: 'ISO time of the last successful check of the state file',
        },
      },
    },
  },
} as const;

export const inferBody = {
  type: 'object',
  properties: {
    id: {
      type: 'string',
      maxLength: 256,
      description: 'Echoed in the response; also the sticky routing key of version splits.',
    },
    parameters: {
      type: 'object',
      properties: {
        timeout_ms: { type: 'integer', minimum: 1, description: 'Deadline of this request (capped by the server).' },
      },
    },
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1 },
          shape: { type: 'array', maxItems: 32, items: { type: 'integer', minimum: 0 } },
          datatype: {
            type: 'string',
            enum: [
              'BOOL',
              'UINT8',
              'UINT16',
              'UINT32',
              'UINT64',
              'INT8',
              'INT16',
              'INT32',
              'INT64',
              'FP16',
              'FP32',
              'FP64',
              'BF16',
              'BYTES',
            ],
          },
          data: { type: 'array', description: 'Row-major values, flat or nested.' },
          parameters: { type: 'object' },
        },
        required: ['name', 'shape', 'datatype', 'data'],
      },
    },
    outputs: {
      type: 'array',
      maxItems: MAX_REQUESTED_OUTPUTS,
      description: 'Outputs to return, each named once (default: every output).',
      items: {
        type: 'object',
        properties: { name: { type: 'string', maxLength: 256 }, parameters: { type: 'object' } },
        required: ['name'],
      },
    },
  },
  required: ['inputs'],
} as const;

export const inferResponse = {
  type: 'object',
  properties: {
    model_name: { type: 'string' },
    model_version: { type: 'string' },
    id: { type: 'string' },
    parameters: {
      type: 'object',
      properties: {
        cache_hit: { type: 'boolean' },
        batch_size: { type: 'integer' },
        infer_ms: { type: 'number' },
        activation_ms: { type: 'number' },
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          datatype: { type: 'string' },
          shape: { type: 'array', items: { type: 'integer' } },
          data: { type: 'array' },
        },
      },
    },
  },
} as const;

export const repositoryIndexBody = {
  anyOf: [
    { type: 'object', properties: { ready: { type: 'boolean', description: 'Only models that are READY.' } } },
    { type: 'null' },
  ],
} as const;

export const repositoryIndexResponse = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      state: { type: 'string', enum: ['READY', 'LOADING', 'UNAVAILABLE'] },
      reason: { type: 'string' },
      cached: { type: 'boolean' },
      pinned: { type: 'boolean' },
    },
  },
} as const;

export const repositoryActionBody = {
  anyOf: [
    {
      type: 'object',
      properties: { parameters: { type: 'object', properties: { version: { type: 'string', minLength: 1 } } } },
    },
    { type: 'null' },
  ],
} as const;

export const repositoryActionResponse = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    state: { type: 'string' },
    cached: { type: 'boolean' },
    pinned: { type: 'boolean' },
  },
} as const;

export const classifyParams = { type: 'object', properties: { task: nameParam }, required: ['task'] } as const;
export const classifyQuery = {
  type: 'object',
  properties: { top: { type: 'integer', minimum: 1, maximum: 1000 } },
} as const;

export const classifyJsonBody = {
  type: 'object',
  properties: {
    image: { type: 'array', description: 'H rows of W grey values (0..255, or 0..1), or H·W values flat.' },
    top: { type: 'integer', minimum: 1, maximum: 1000 },
  },
  required: ['image'],
} as const;

export const classifyResponse = {
  type: 'object',
  properties: {
    task: { type: 'string' },
    version: { type: 'string' },
    labels: {
      type: 'array',
      items: { type: 'object', properties: { label: { type: 'string' }, probability: { type: 'number' } } },
    },
  },
} as const;

const taskFields = {
  version: {
    anyOf: [{ type: 'string', minLength: 1 }, { type: 'integer' }],
    description: 'Immutable once registered.',
  },
  uri: {
    type: 'string',
    minLength: 1,
    description: 'Delta location: path under deltas.fileRoot, file:// or https:// URL.',
  },
  sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
  description: { type: 'string', maxLength: 4096 },
  labels: {
    type: 'array',
    items: { type: 'string', maxLength: 256 },
    minItems: 1,
    maxItems: 4096,
    description: 'Class names of the leading logits; at most as many as the model has.',
  },
  numClasses: {
    type: 'integer',
    minimum: 1,
    description: "Leading logits that belong to the task; at most the model's logit count.",
  },
  default: { type: 'boolean', description: 'Serve this version to requests naming none (default true).' },
} as const;

export const registerTaskBody = {
  type: 'object',
  properties: { name: nameParam, ...taskFields },
  required: ['name', 'version', 'uri', 'sha256'],
  additionalProperties: false,
} as const;

export const updateTaskBody = {
  type: 'object',
  properties: taskFields,
  required: ['version', 'uri', 'sha256'],
  additionalProperties: false,
} as const;

export const taskNameParams = { type: 'object', properties: { name: nameParam }, required: ['name'] } as const;
export const retireQuery = { type: 'object', properties: { version: nameParam } } as const;

const taskView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    default: { type: 'boolean' },
    uri: { type: 'string' },
    sha256: { type: 'string' },
    description: { type: 'string' },
    labels: { type: ['array', 'null'], items: { type: 'string' } },
    numClasses: { type: ['integer', 'null'] },
    origin: { type: 'string', enum: ['declared', 'admin'] },
    registeredAt: { type: ['string', 'null'] },
    state: { type: 'string' },
    reason: {
      type: 'string',
      description: 'Why the last load failed (UNAVAILABLE), with the delta location; empty otherwise.',
    },
    cached: {
      type: ['object', 'null'],
      description:
        "While the version's delta is in this replica's cache: its bytes there (memoryBytes, as the engine keeps it) and its file's (fileBytes); null otherwise.",
      properties: { memoryBytes: { type: 'integer' }, fileBytes: { type: 'integer' } },
    },
  },
} as const;

export const taskListResponse = { type: 'object', properties: { tasks: { type: 'array', items: taskView } } } as const;
export const taskResponse = { type: 'object', properties: { task: taskView, created: { type: 'boolean' } } } as const;
export const retireResponse = {
  type: 'object',
  properties: { retired: { type: 'array', items: { type: 'string' } } },
} as const;
