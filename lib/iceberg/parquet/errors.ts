import { IcebergError } from '../errors.js';

/**
 * Errors of the Parquet writer and reader. They extend {@link IcebergError}, each with its own kind in
 * `ICEBERG_ERROR_KINDS`, which maps it to a failure type.
 */

/**
 * A value given to the Parquet writer does not fit its column: a null in a required field, a value of the wrong
 * JavaScript representation (see `values.ts`), or a value out of range. The message names the column, its field
 * id and the row, so that the caller can find the source record.
 */
export class ParquetWriteError extends IcebergError {
  readonly kind = 'invalid-column-value';
  override readonly name = 'ParquetWriteError';

  constructor(
    /** Full dotted name of the column, e.g. `address.zip` or `tags.element`. */
    readonly column: string,
    /** The column's field id. */
    readonly fieldId: number,
    /** The 0-based row of the input, or `undefined` when the problem is not about one row. */
    readonly row: number | undefined,
    /** What is wrong, including what was expected. */
    readonly problem: string,
  ) {
    super(
      `cannot write column "${column}" (field id ${fieldId})${row === undefined ? '' : ` at row ${row}`}: ${problem}`,
    );
  }
}

/**
 * A Parquet file cannot be read as a data file of the given schema: the bytes are not Parquet, the footer is
 * damaged, a required column is missing, or a column's type cannot be read as the field's type. It reports the
 * `Corrupt` failure type (through the `corrupt-data-file` kind) because retrying cannot help and the file, not the
 * caller's input, is at fault.
 */
export class ParquetReadError extends IcebergError {
  readonly kind = 'corrupt-data-file';
  override readonly name = 'ParquetReadError';

  constructor(
    /** What is wrong, naming the column when there is one. */
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`cannot read Parquet data file: ${problem}`, options);
  }
}
