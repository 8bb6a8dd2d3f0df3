import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';

const { temporal } = proto;
import { SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTE_KEYS } from '../schemas/search-attributes.js';

const ProtoType = temporal.api.enums.v1.IndexedValueType;
type IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;

function protoType(type: SearchAttributeType): IndexedValueType {
  switch (type) {
    case SearchAttributeType.TEXT:
      return ProtoType.INDEXED_VALUE_TYPE_TEXT;
    case SearchAttributeType.KEYWORD:
      return ProtoType.INDEXED_VALUE_TYPE_KEYWORD;
    case SearchAttributeType.INT:
      return ProtoType.INDEXED_VALUE_TYPE_INT;
    case SearchAttributeType.DOUBLE:
      return ProtoType.INDEXED_VALUE_TYPE_DOUBLE;
    case SearchAttributeType.BOOL:
      return ProtoType.INDEXED_VALUE_TYPE_BOOL;
    case SearchAttributeType.DATETIME:
      return ProtoType.INDEXED_VALUE_TYPE_DATETIME;
    case SearchAttributeType.KEYWORD_LIST:
      return ProtoType.INDEXED_VALUE_TYPE_KEYWORD_LIST;
  }
}

/**
 * Registers Sluice's search attributes on a cluster (self-hosted or dev server); returns the names it added. A name
 * that exists with another type is an error, since changing it would break every query that uses it.
 */
export async function registerSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const custom = existing.customAttributes ?? {};
  const missing: Record<string, IndexedValueType> = {};
  for (const key of SEARCH_ATTRIBUTE_KEYS) {
    const want = protoType(key.type);
    const have = custom[key.name];
    if (have === undefined || have === null) missing[key.name] = want;
    else if (have !== want) {
      throw new Error(
        `search attribute ${key.name} exists in namespace "${namespace}" with type ${ProtoType[have]}, Sluice needs ${ProtoType[want]}; remove or rename it first`,
      );
    }
  }
  if (Object.keys(missing).length > 0) {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  }
  return Object.keys(missing);
}
