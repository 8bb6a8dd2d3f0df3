import type SharpDefault from 'sharp';
import { InferenceError, InferenceItemError } from './errors.js';
import type { ModelManifest } from './manifest.js';

type Sharp = typeof SharpDefault;

let sharpModule: Promise<Sharp> | undefined;

/** sharp is loaded on first use, so that text-only processes (the GPU benchmark bundle) run without it. */
async function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp').then(
    (m) => m.default,
    (err: unknown) => {
      sharpModule = undefined;
      throw new InferenceError(
        'provider-unavailable',
        `image models need the "sharp" package, which does not load here: ${(err as Error).message}`,
        { cause: err },
      );
    },
  );
  return sharpModule;
}

/** The image preprocessing of a manifest: decode, fit to width × height, `(x/255 - mean) / std`, CHW float32. */
export class ImagePreprocessor {
  readonly width: number;
  readonly height: number;
  /** Floats per image: 3 × height × width. */
  readonly size: number;

  constructor(private readonly spec: NonNullable<ModelManifest['image']>) {
    this.width = spec.width;
    this.height = spec.height;
    this.size = 3 * spec.width * spec.height;
  }

  /**
   * Decodes one encoded image (PNG, JPEG, WebP, …) into `out` at `offset`. Bytes that do not decode are an
   * {@link InferenceItemError} for item `index`, never a batch failure.
   */
  async decodeInto(bytes: Uint8Array, index: number, out: Float32Array, offset: number): Promise<void> {
    const sharp = await loadSharp();
    let pixels: Buffer;
    try {
      pixels = await sharp(bytes, { failOn: 'error' })
        .removeAlpha()
        .toColourspace('srgb')
        .resize(this.width, this.height, { fit: this.spec.fit, kernel: this.spec.kernel })
        .raw()
        .toBuffer();
    } catch (err) {
      throw new InferenceItemError(
        'undecodable-image',
        index,
        `item #${index}: ${bytes.byteLength} bytes do not decode as an image: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.normalizeInto(pixels, 3, out, offset);
  }

  /** Writes interleaved 8-bit pixels (`channels` per pixel, RGB first) as normalised CHW floats. */
  normalizeInto(pixels: Uint8Array, channels: number, out: Float32Array, offset: number): void {
    const plane = this.width * this.height;
    if (pixels.length < plane * channels) {
      throw new Error(
        `expected ${plane * channels} bytes of ${this.width}×${this.height} pixels, got ${pixels.length}`,
      );
    }
    const { mean, std } = this.spec;
    for (let c = 0; c < 3; c++) {
      const scale = 1 / (255 * std[c]!);
      const shift = mean[c]! / std[c]!;
      const base = offset + c * plane;
      for (let p = 0; p < plane; p++) out[base + p] = pixels[p * channels + c]! * scale - shift;
    }
  }
}
