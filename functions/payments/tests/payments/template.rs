//! What infra/template.yaml must keep true for SQS consumers (issue 13, item 2): every queue
//! that triggers a function hides a received message for at least 6 times that function's
//! timeout (AWS's advice for Lambda event sources: a message still being worked on is never
//! handed to a second invocation), and payment-events' `MAX_RECEIVE_COUNT` is its queue's
//! `maxReceiveCount` (the receive on which a failing refund is recorded `failed`).

use serde_yaml::Value;

fn template() -> Value {
    let path = format!("{}/../../infra/template.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(&path).expect("template")).expect("YAML")
}

/// `!GetAtt Queue.Arn` -> `Queue`.
fn get_att_resource(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str().and_then(|s| s.split('.').next()).map(str::to_owned),
        Value::Mapping(m) => m.get("Fn::GetAtt")?.as_sequence()?.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// (function, its timeout, queue, the queue's visibility timeout, the queue's maxReceiveCount).
fn sqs_consumers(t: &Value) -> Vec<(String, u64, String, u64, Option<u64>)> {
    let global_timeout = t["Globals"]["Function"]["Timeout"].as_u64().unwrap_or(3);
    let resources = t["Resources"].as_mapping().expect("Resources");
    let mut out = Vec::new();
    for (name, r) in resources {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = &r["Properties"];
        let timeout = props.get("Timeout").and_then(as_u64).unwrap_or(global_timeout);
        for (_, e) in props.get("Events").and_then(Value::as_mapping).into_iter().flatten() {
            if e["Type"].as_str() != Some("SQS") {
                continue;
            }
            let queue = get_att_resource(&e["Properties"]["Queue"]).expect("Queue: !GetAtt <queue>.Arn");
            let q = &resources[queue.as_str()]["Properties"];
            let visibility = q.get("VisibilityTimeout").and_then(as_u64).unwrap_or(30);
            let max_receives = q.get("RedrivePolicy").and_then(|p| p.get("maxReceiveCount")).and_then(as_u64);
            out.push((name.as_str().unwrap().to_owned(), timeout, queue, visibility, max_receives));
        }
    }
    out
}

#[test]
fn every_sqs_triggered_function_has_a_visibility_timeout_of_at_least_six_times_its_timeout() {
    let consumers = sqs_consumers(&template());
    assert!(consumers.iter().any(|c| c.0 == "PaymentEventsFunction"), "{consumers:?}");
    for (function, timeout, queue, visibility, _) in &consumers {
        assert!(
            visibility >= &(6 * timeout),
            "{queue}: VisibilityTimeout {visibility} < 6 x {function}'s Timeout {timeout}"
        );
    }
}

#[test]
fn payment_events_knows_its_queue_s_max_receive_count() {
    let t = template();
    let (_, _, queue, _, max_receives) = sqs_consumers(&t)
        .into_iter()
        .find(|c| c.0 == "PaymentEventsFunction")
        .expect("payment-events consumes a queue");
    let configured =
        as_u64(&t["Resources"]["PaymentEventsFunction"]["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"]);
    assert_eq!(configured, max_receives, "MAX_RECEIVE_COUNT vs {queue}'s RedrivePolicy maxReceiveCount");
    assert_eq!(configured, Some(u64::from(payments::events::DEFAULT_MAX_RECEIVE_COUNT)));
}

#[test]
fn the_payment_alerts_are_counted_and_alarmed() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    for alert in ["refund_failed", "stray_payment", "refund_invariant_violated"] {
        let (filter, metric, namespace) = resources
            .iter()
            .find_map(|(name, r)| {
                let pattern = r["Properties"]["FilterPattern"].as_str()?;
                (r["Type"].as_str() == Some("AWS::Logs::MetricFilter")
                    && pattern == format!("{{ $.{} = \"{alert}\" }}", payments::events::ALERT_FIELD))
                .then(|| {
                    let transformation = &r["Properties"]["MetricTransformations"][0];
                    (
                        name.as_str().unwrap().to_owned(),
                        transformation["MetricName"].clone(),
                        transformation["MetricNamespace"].clone(),
                    )
                })
            })
            .unwrap_or_else(|| panic!("no metric filter for {alert}"));
        // The namespace names the stage (`!Sub "Roost/${Stage}/Payments"`): the alarm must watch
        // the very same one.
        let alarmed = resources.iter().any(|(_, r)| {
            r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && r["Properties"]["MetricName"] == metric
                && r["Properties"]["Namespace"] == namespace
        });
        assert!(alarmed, "{filter}: no alarm on {metric:?}");
    }
}
