import { IcebergError } from '../errors.js';

/**
 * An Avro object container file (a manifest or manifest list) cannot be decoded, or decodes to something that is
 * not the Iceberg structure the caller asked for. Reported as the `corrupt-manifest` kind (failure type `Corrupt`): like a broken metadata
 * JSON file, a broken manifest is permanent, and retrying the read will not help.
 */
export class CorruptAvroFileError extends IcebergError {
  readonly kind = 'corrupt-manifest';
  override readonly name = 'CorruptAvroFileError';

  constructor(
    /** What the file was meant to be and where it came from, e.g. `manifest "s3://…/m0.avro"`; as the caller named it. */
    readonly file: string,
    /** What is wrong, without the file name. */
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(
      `${file} is not a readable Iceberg Avro file: ${problem}; the file was damaged or not written by a ` +
        'spec-compliant writer — restore it from a copy or roll the table back to a snapshot that does not use it',
      options,
    );
  }
}
