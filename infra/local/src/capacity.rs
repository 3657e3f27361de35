//! DynamoDB on-demand capacity, counted per call by the fault proxy (every function's DynamoDB
//! calls pass through it): what `cargo roost bench` prices (docs/performance.md "Cost").
//!
//! moto does not report `ConsumedCapacity`, so the units come from the wire sizes, as an upper
//! bound: a read costs one unit per 4 KB of the answer (strongly consistent; eventually
//! consistent reads cost half), a write one unit per 1 KB of each item written, a transaction
//! twice that. JSON on the wire (type tags, expressions) is larger than the item DynamoDB
//! meters, so the figure errs high, never low; items are counted one by one so a transaction of
//! several small items is not under-counted.

use serde_json::Value;

/// Read and write request units of one call.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

/// The operation a DynamoDB JSON call names (`X-Amz-Target: DynamoDB_20120810.GetItem`).
pub fn operation(target: &str) -> &str {
    target.rsplit('.').next().unwrap_or(target)
}

fn per(bytes: usize, unit: usize) -> f64 {
    bytes.div_ceil(unit).max(1) as f64
}

/// The units of one item in a write request: its JSON's size, at least one unit.
fn item_write_units(item: &Value) -> f64 {
    per(item.to_string().len(), 1024)
}

/// The units `operation` consumed, from its request body and the size of its answer.
pub fn units(operation: &str, request: &[u8], response_len: usize) -> Units {
    let body: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    match operation {
        "GetItem" | "Query" | "Scan" | "BatchGetItem" => Units { read: per(response_len, 4096), write: 0.0 },
        "TransactGetItems" => Units { read: 2.0 * per(response_len, 4096), write: 0.0 },
        "PutItem" | "UpdateItem" | "DeleteItem" => Units { read: 0.0, write: per(request.len(), 1024) },
        "BatchWriteItem" => {
            let items =
                body["RequestItems"].as_object().into_iter().flatten().flat_map(|(_, v)| v.as_array()).flatten();
            Units { read: 0.0, write: items.map(item_write_units).sum() }
        }
        "TransactWriteItems" => {
            let items = body["TransactItems"].as_array().into_iter().flatten();
            Units { read: 0.0, write: 2.0 * items.map(item_write_units).sum::<f64>() }
        }
        // DescribeTable and the like are free.
        _ => Units::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_cost_a_unit_per_4kb_of_answer() {
        assert_eq!(operation("DynamoDB_20120810.GetItem"), "GetItem");
        assert_eq!(units("GetItem", b"{}", 300), Units { read: 1.0, write: 0.0 });
        assert_eq!(units("Query", b"{}", 4097), Units { read: 2.0, write: 0.0 });
        assert_eq!(units("TransactGetItems", b"{}", 100), Units { read: 2.0, write: 0.0 });
    }

    #[test]
    fn writes_cost_a_unit_per_kb_and_transactions_twice_per_item() {
        let small = br#"{"TableName":"t","Item":{"pk":{"S":"a"}}}"#;
        assert_eq!(units("PutItem", small, 2), Units { read: 0.0, write: 1.0 });
        let big = format!(r#"{{"Item":{{"d":{{"S":"{}"}}}}}}"#, "x".repeat(1500));
        assert_eq!(units("UpdateItem", big.as_bytes(), 2).write, 2.0);
        let three =
            json!({"TransactItems": [{"Put": {"Item": {}}}, {"Update": {"Key": {}}}, {"ConditionCheck": {"Key": {}}}]});
        assert_eq!(units("TransactWriteItems", three.to_string().as_bytes(), 2).write, 6.0, "3 small items x 2");
        let batch = json!({"RequestItems": {"t": [{"PutRequest": {}}, {"DeleteRequest": {}}]}});
        assert_eq!(units("BatchWriteItem", batch.to_string().as_bytes(), 2).write, 2.0);
        assert_eq!(units("DescribeTable", b"{}", 900), Units::default());
    }
}
