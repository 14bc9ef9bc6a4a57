/**
 * `buildDeltaSource(options)`: one DeltaSource that dispatches on the URI's scheme to the file
 * or http(s) source. Schemes not in `allowedSchemes` are refused before anything is read.
 */
import { DS_ERR_SOURCE_BAD_OPTION, DS_ERR_SOURCE_SCHEME_NOT_ALLOWED } from '../../core/errors.js';
import type { DeltaSource, DeltaSourceScheme, FetchStatus } from './delta-source.js';
import { FileDeltaSource } from './file-source.js';
import { HttpDeltaSource, type HttpDeltaSourceOptions } from './http-source.js';
import { withUri } from './source-error.js';
import { isKnownScheme, redactUri, schemeOf } from './uri.js';

export interface DeltaSourceOptions extends Omit<HttpDeltaSourceOptions, 'allowedSchemes'> {
  /** Schemes served; a plain path counts as `file`. Default `['file', 'https']`. */
  allowedSchemes?: readonly DeltaSourceScheme[];
  /** Folder that `file://` URIs and plain paths must resolve into. Required when `file` is allowed. */
  fileRoot?: string;
}

export function buildDeltaSource(options: DeltaSourceOptions = {}): DeltaSource {
  const allowedSchemes = options.allowedSchemes ?? ['file', 'https'];
  for (const scheme of allowedSchemes) {
    if (!isKnownScheme(scheme)) {
      throw new DS_ERR_SOURCE_BAD_OPTION('allowedSchemes', `"${String(scheme)}" is not file, http or https`);
    }
  }
  const httpSchemes = allowedSchemes.filter((s): s is 'http' | 'https' => s !== 'file');
  let file: FileDeltaSource | undefined;
  if (allowedSchemes.includes('file')) {
    if (options.fileRoot === undefined) {
      throw new DS_ERR_SOURCE_BAD_OPTION('fileRoot', 'required while "file" is an allowed scheme');
    }
    file = new FileDeltaSource({
      root: options.fileRoot,
      ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
    });
  }
  const { fileRoot: _fileRoot, allowedSchemes: _schemes, ...httpOptions } = options;
  const http =
    httpSchemes.length > 0 ? new HttpDeltaSource({ ...httpOptions, allowedSchemes: httpSchemes }) : undefined;
  return new SchemeDispatchingSource(allowedSchemes, file, http);
}

class SchemeDispatchingSource implements DeltaSource {
  constructor(
    private readonly allowedSchemes: readonly DeltaSourceScheme[],
    private readonly file: DeltaSource | undefined,
    private readonly http: DeltaSource | undefined,
  ) {}

  fetch(uri: string, expectedSha256: string, signal?: AbortSignal, status?: FetchStatus): Promise<Uint8Array> {
    const scheme = schemeOf(uri);
    const source = scheme === 'file' ? this.file : scheme === 'http' || scheme === 'https' ? this.http : undefined;
    if (source === undefined || !(this.allowedSchemes as readonly string[]).includes(scheme)) {
      return Promise.reject(
        withUri(new DS_ERR_SOURCE_SCHEME_NOT_ALLOWED(redactUri(uri), scheme, this.allowedSchemes.join(', ')), uri),
      );
    }
    return source.fetch(uri, expectedSha256, signal, status);
  }

  async close(): Promise<void> {
    await Promise.all([this.file?.close?.(), this.http?.close?.()]);
  }
}
