import { MAX_NAME_LENGTH } from './catalog-tables.js';
import { InvalidIdentifierError } from './errors.js';

/**
 * A namespace: its levels (`['db']`, `['sales', 'eu']`), or the same dot-joined (`'sales.eu'`). The catalog table
 * stores the dot-joined form, as Java and pyiceberg do, so a level cannot contain a dot.
 */
export type NamespaceInput = string | readonly string[];

/** A table: `'db.orders'` (the last part is the table name) or `{ namespace, name }`. */
export type TableIdentifierInput = string | { readonly namespace: NamespaceInput; readonly name: string };

/** A table identifier in canonical form. */
export interface TableIdentifier {
  /** At least one level, as pyiceberg requires. */
  readonly namespace: readonly string[];
  readonly name: string;
}

/** A validated namespace with its stored (dot-joined) form. */
export interface ResolvedNamespace {
  readonly levels: readonly string[];
  /** What `iceberg_namespace_properties.namespace` and `iceberg_tables.table_namespace` hold. */
  readonly joined: string;
}

/** A validated table identifier with its stored namespace form. */
export interface ResolvedTable {
  readonly namespace: ResolvedNamespace;
  readonly name: string;
  /** `db.orders`, for messages. */
  readonly display: string;
}

// Control characters would make messages and paths unreadable, and NUL is refused by Postgres text columns.
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function codePoints(text: string): number {
  return [...text].length;
}

/**
 * Validates a namespace. Levels must be non-empty, without `.` or control characters; the joined form must fit
 * the 255-character column.
 * @throws InvalidIdentifierError
 */
export function resolveNamespace(input: NamespaceInput): ResolvedNamespace {
  const shown = typeof input === 'string' ? input : input.join('.');
  const levels = typeof input === 'string' ? input.split('.') : [...input];
  if (levels.length === 0 || (levels.length === 1 && levels[0] === '')) {
    throw new InvalidIdentifierError(shown, 'a namespace needs at least one level, e.g. "db"');
  }
  for (const level of levels) {
    if (level === '') {
      throw new InvalidIdentifierError(shown, 'a namespace level is empty; write levels joined by single dots');
    }
    if (typeof input !== 'string' && level.includes('.')) {
      throw new InvalidIdentifierError(
        shown,
        `the level "${level}" contains a dot, which the catalog uses to join levels; rename the level`,
      );
    }
    if (hasControlCharacter(level))
      throw new InvalidIdentifierError(shown, 'a namespace level contains a control character');
  }
  const joined = levels.join('.');
  if (codePoints(joined) > MAX_NAME_LENGTH) {
    throw new InvalidIdentifierError(
      shown,
      `a namespace may have at most ${MAX_NAME_LENGTH} characters (dots included)`,
    );
  }
  return { levels, joined };
}

/**
 * Validates a table identifier. The string form `a.b.orders` splits at the last dot; a table name cannot contain
 * a dot, so that the string form stays unambiguous.
 * @throws InvalidIdentifierError
 */
export function resolveTable(input: TableIdentifierInput): ResolvedTable {
  let namespaceInput: NamespaceInput;
  let name: string;
  if (typeof input === 'string') {
    const dot = input.lastIndexOf('.');
    if (dot === -1) {
      throw new InvalidIdentifierError(input, 'a table identifier needs a namespace, e.g. "db.orders"');
    }
    namespaceInput = input.slice(0, dot);
    name = input.slice(dot + 1);
  } else {
    namespaceInput = input.namespace;
    name = input.name;
  }
  const namespace = resolveNamespace(namespaceInput);
  const display = `${namespace.joined}.${name}`;
  if (name === '') throw new InvalidIdentifierError(display, 'the table name is empty');
  if (name.includes('.')) {
    throw new InvalidIdentifierError(display, `the table name "${name}" contains a dot; pick a name without one`);
  }
  if (hasControlCharacter(name))
    throw new InvalidIdentifierError(display, 'the table name contains a control character');
  if (codePoints(name) > MAX_NAME_LENGTH) {
    throw new InvalidIdentifierError(display, `a table name may have at most ${MAX_NAME_LENGTH} characters`);
  }
  return { namespace, name, display };
}

/** Escapes `text` for `LIKE … ESCAPE '!'`, so that `_` and `%` in names match only themselves. */
export function escapeLike(text: string): string {
  return text.replace(/[!%_]/g, (c) => `!${c}`);
}
