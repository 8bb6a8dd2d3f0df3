import onnxProto, { type onnx } from 'onnx-proto';

// onnx-proto is CommonJS; Node's ESM loader exposes its `onnx` namespace on the default export only.
const proto = onnxProto.onnx;

/** ONNX element types the generated models use. */
export const DType = { float: 1, int32: 6, int64: 7 } as const;
type DTypeName = keyof typeof DType;

/** One dimension of a graph input or output: a fixed size or a symbolic name (`batch`, `seq`). */
export type Dim = number | string;

type AttrValue = number | number[] | string | { float: number } | { tensor: onnx.ITensorProto };

/**
 * A small builder over onnx-proto: nodes, float/int64 initializers and typed inputs/outputs, serialised as an
 * opset-18 model. It names intermediate values itself (`t0`, `t1`…), so model code reads as a chain of ops.
 */
export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(readonly name: string) {}

  private fresh(prefix = 't'): string {
    return `${prefix}${this.counter++}`;
  }

  private valueInfo(name: string, dtype: DTypeName, dims: readonly Dim[]): onnx.IValueInfoProto {
    return {
      name,
      type: {
        tensorType: {
          elemType: DType[dtype],
          shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
        },
      },
    };
  }

  input(name: string, dtype: DTypeName, dims: readonly Dim[]): string {
    this.inputs.push(this.valueInfo(name, dtype, dims));
    return name;
  }

  output(value: string, name: string, dtype: DTypeName, dims: readonly Dim[]): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push(this.valueInfo(name, dtype, dims));
  }

  /** A float32 initializer of the given shape (row-major). */
  floats(values: ArrayLike<number>, dims: readonly number[], name = this.fresh('w')): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (values.length !== size) throw new Error(`initializer ${name}: ${values.length} values for dims [${dims}]`);
    const data = Float32Array.from(values);
    this.initializers.push({
      name,
      dataType: DType.float,
      dims: [...dims],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /** An int64 initializer (shapes, axes, indices). */
  ints(values: readonly number[], dims: readonly number[] = [values.length], name = this.fresh('i')): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dataType: DType.int64,
      dims: [...dims],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /** A scalar float constant. */
  scalar(value: number): string {
    return this.floats([value], []);
  }

  /** Adds a node and returns the name of its (first) output. */
  op(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, output = this.fresh()): string {
    this.nodes.push({
      opType: type,
      name: `${type}_${output}`,
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attrs).map(([key, value]) => attribute(key, value)),
    });
    return output;
  }

  /** Serialises the model: IR version 8, opset 18. */
  toBytes(docString: string): Uint8Array {
    const model = proto.ModelProto.create({
      irVersion: 8,
      producerName: 'sluice generate-models',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: 18 }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return proto.ModelProto.encode(model).finish();
  }
}

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const T = proto.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.TENSOR, t: value.tensor };
}

/** A FLOAT attribute whose value may be integral (`alpha: 1`); a plain integral number would become an INT. */
export function floatAttr(value: number): AttrValue {
  return { float: value };
}
