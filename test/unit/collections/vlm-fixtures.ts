import { catalogGrid, catalogItemId, describeItem, renderItemPng } from '../../../lib/inference/synthetic-catalog.js';
import type { Attributes, CatalogRow } from '../../../lib/collections/types.js';
import { sha256Hex, truthFromImages } from '../../../lib/collections/vlm-stand-in.js';

/** `count` synthetic catalog items rendered as PNGs, spread over the grid, with their ground truth. */
export interface SyntheticImages {
  rows: CatalogRow[];
  /** Image bytes by image URI (`mem://<item id>.png`). */
  images: Map<string, Uint8Array>;
  truth: Map<string, Attributes>;
  lookup: (sha: string) => Attributes | undefined;
  attributesOf: Map<string, Attributes>;
  shaOf: Map<string, string>;
}

export async function syntheticImages(count: number): Promise<SyntheticImages> {
  const grid = catalogGrid();
  const step = Math.max(1, Math.floor(grid.length / count));
  const picked = Array.from({ length: count }, (_, i) => grid[(i * step) % grid.length]!);
  const rows: CatalogRow[] = [];
  const images = new Map<string, Uint8Array>();
  const attributesOf = new Map<string, Attributes>();
  const shaOf = new Map<string, string>();
  const entries: { bytes: Uint8Array; attributes: Attributes }[] = [];
  for (const item of picked) {
    const id = catalogItemId(item);
    const bytes = await renderItemPng(item);
    const uri = `mem://${id}.png`;
    const attributes = { color: item.color, shape: item.shape, pattern: item.pattern, size: item.size };
    images.set(uri, bytes);
    attributesOf.set(id, attributes);
    shaOf.set(id, sha256Hex(bytes));
    entries.push({ bytes, attributes });
    rows.push({
      itemId: id,
      imageUri: uri,
      title: `${describeItem(item)} sticker`,
      description: `A ${describeItem(item)}.`,
    });
  }
  const { lookup, byHash } = truthFromImages(entries);
  return { rows, images, truth: byHash, lookup, attributesOf, shaOf };
}
