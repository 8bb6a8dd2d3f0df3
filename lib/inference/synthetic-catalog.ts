/**
 * The synthetic catalog the generated dual encoder is built for: items described by colour × shape × pattern × size,
 * drawn as small RGB images. The collection builder (issue 7) and the inference tests use it; the model generator
 * calibrates the image tower on its renderings.
 */

/** Colours, with the sRGB value an item of that colour is painted in. */
export const CATALOG_COLORS = {
  red: [220, 30, 30],
  orange: [245, 130, 20],
  yellow: [240, 215, 30],
  green: [30, 160, 60],
  blue: [30, 70, 220],
  purple: [140, 40, 180],
  pink: [245, 120, 185],
  black: [25, 25, 25],
} as const satisfies Record<string, readonly [number, number, number]>;
export const CATALOG_SHAPES = ['circle', 'square', 'triangle', 'diamond'] as const;
export const CATALOG_PATTERNS = ['solid', 'striped', 'dotted', 'checkered'] as const;
/** Sizes, with the half-extent of the shape in pixels of a 64-pixel image. */
export const CATALOG_SIZES = { small: 12, medium: 18, large: 26 } as const;

/** The image background (mid grey) and the gap colour of patterns (white). */
export const CATALOG_BACKGROUND = [128, 128, 128] as const;
export const CATALOG_GAP = [255, 255, 255] as const;
/** Side of a rendered image, in pixels; the image tower takes this size. */
export const CATALOG_IMAGE_SIZE = 64;
/** Period of stripes, dots and checks, in pixels (half on, half off). */
export const PATTERN_PERIOD = 6;

export type CatalogColor = keyof typeof CATALOG_COLORS;
export type CatalogShape = (typeof CATALOG_SHAPES)[number];
export type CatalogPattern = (typeof CATALOG_PATTERNS)[number];
export type CatalogSize = keyof typeof CATALOG_SIZES;

export const COLOR_NAMES = Object.keys(CATALOG_COLORS) as CatalogColor[];
export const SIZE_NAMES = Object.keys(CATALOG_SIZES) as CatalogSize[];

/** One catalog item. */
export interface CatalogItem {
  color: CatalogColor;
  shape: CatalogShape;
  pattern: CatalogPattern;
  size: CatalogSize;
}

/** Words (with synonyms) the text tower understands for each attribute value. */
export const ATTRIBUTE_WORDS: Record<string, readonly string[]> = {
  red: ['red', 'crimson', 'scarlet'],
  orange: ['orange', 'tangerine'],
  yellow: ['yellow', 'lemon'],
  green: ['green', 'emerald'],
  blue: ['blue', 'navy', 'azure'],
  purple: ['purple', 'violet'],
  pink: ['pink', 'rose'],
  black: ['black', 'dark'],
  circle: ['circle', 'round', 'circular', 'disc'],
  square: ['square', 'box', 'squared'],
  triangle: ['triangle', 'triangular'],
  diamond: ['diamond', 'rhombus', 'lozenge'],
  solid: ['solid', 'plain', 'filled'],
  striped: ['striped', 'stripes', 'stripy', 'lined'],
  dotted: ['dotted', 'dots', 'spotted', 'polka'],
  checkered: ['checkered', 'checked', 'checkerboard', 'chequered'],
  small: ['small', 'tiny', 'little'],
  medium: ['medium', 'mid', 'regular'],
  large: ['large', 'big', 'huge'],
};

/** Every item of the grid: 8 colours × 4 shapes × 4 patterns × 3 sizes = 384. */
export function catalogGrid(): CatalogItem[] {
  const items: CatalogItem[] = [];
  for (const color of COLOR_NAMES)
    for (const shape of CATALOG_SHAPES)
      for (const pattern of CATALOG_PATTERNS)
        for (const size of SIZE_NAMES) items.push({ color, shape, pattern, size });
  return items;
}

/** A stable id, e.g. `red-circle-striped-small`. */
export function catalogItemId(item: CatalogItem): string {
  return `${item.color}-${item.shape}-${item.pattern}-${item.size}`;
}

/** The plain description, e.g. `small red striped circle`. */
export function describeItem(item: CatalogItem): string {
  return `${item.size} ${item.color} ${item.pattern} ${item.shape}`;
}

/** Whether pixel (x, y) lies inside the shape centred at (c, c) with half-extent r. */
function insideShape(shape: CatalogShape, x: number, y: number, c: number, r: number): boolean {
  const dx = x + 0.5 - c;
  const dy = y + 0.5 - c;
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'square':
      return Math.abs(dx) <= r && Math.abs(dy) <= r;
    case 'diamond':
      return Math.abs(dx) + Math.abs(dy) <= r;
    case 'triangle':
      // Apex up: width grows from 0 at the top (dy = -r) to 2r at the base (dy = r).
      return dy >= -r && dy <= r && Math.abs(dx) <= (dy + r) / 2;
  }
}

/** Whether pattern cell (x, y) carries the item's colour (else the gap colour). */
function patternOn(pattern: CatalogPattern, x: number, y: number): boolean {
  const h = PATTERN_PERIOD / 2;
  const cx = Math.floor(x / h) % 2 === 0;
  const cy = Math.floor(y / h) % 2 === 0;
  switch (pattern) {
    case 'solid':
      return true;
    case 'striped':
      return cy;
    case 'dotted':
      return cx && cy;
    case 'checkered':
      return cx === cy;
  }
}

/** Options of {@link renderItemPixels}. */
export interface RenderOptions {
  /** Side in pixels. @default 64 */
  size?: number;
  /** Uniform per-channel noise amplitude (0–255) drawn from `seed`, to test robustness. @default 0 */
  noise?: number;
  /** @default 1 */
  seed?: number;
  /**
   * Mixes another colour into the item's paint, `weight` of it (0–0.5): an ambiguous item (a reddish orange) whose
   * true colour is still the item's own. @default none
   */
  blend?: { color: CatalogColor; weight: number };
}

/** A small deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws an item as interleaved RGB bytes (`size × size × 3`), the shape centred on a grey background. */
export function renderItemPixels(item: CatalogItem, opts: RenderOptions = {}): Uint8Array {
  const size = opts.size ?? CATALOG_IMAGE_SIZE;
  const scale = size / CATALOG_IMAGE_SIZE;
  const r = CATALOG_SIZES[item.size] * scale;
  const c = size / 2;
  const own = CATALOG_COLORS[item.color];
  const mix = opts.blend ? CATALOG_COLORS[opts.blend.color] : own;
  const w = opts.blend ? Math.min(0.5, Math.max(0, opts.blend.weight)) : 0;
  const color = own.map((c, i) => (1 - w) * c + w * mix[i]!) as unknown as readonly [number, number, number];
  const rand = mulberry32(opts.seed ?? 1);
  const noise = opts.noise ?? 0;
  const px = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const rgb = !insideShape(item.shape, x, y, c, r)
        ? CATALOG_BACKGROUND
        : patternOn(item.pattern, Math.floor(x / scale), Math.floor(y / scale))
          ? color
          : CATALOG_GAP;
      for (let ch = 0; ch < 3; ch++) {
        const v = rgb[ch]! + (noise > 0 ? (rand() * 2 - 1) * noise : 0);
        px[(y * size + x) * 3 + ch] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return px;
}

/** Renders an item as a PNG with sharp (loaded on first use). */
export async function renderItemPng(item: CatalogItem, opts: RenderOptions = {}): Promise<Uint8Array> {
  const size = opts.size ?? CATALOG_IMAGE_SIZE;
  const { default: sharp } = await import('sharp');
  const png = await sharp(renderItemPixels(item, opts), { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}
