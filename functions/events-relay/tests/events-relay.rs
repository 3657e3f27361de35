//! Every sample event in `events/events-relay/` (DynamoDB Streams batches exactly as Lambda
//! delivers them) replayed through the real handler, with a fake SNS, and the answer each one
//! must get.

use std::sync::Mutex;

use events_relay::{AppState, Outgoing, PublishError, Publisher, handle_batch};
use serde_json::Value;
use shared::events::{BookingCancelled, BookingCreated, BookingExpired, Envelope, EventData, OutboxItem};

#[derive(Default)]
struct FakeSns {
    sent: Mutex<Vec<Outgoing>>,
}

impl Publisher for FakeSns {
    async fn publish(&self, message: &Outgoing) -> Result<String, PublishError> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.push(message.clone());
        Ok(format!("sns-{}", sent.len()))
    }
}

struct Expected {
    file: &'static str,
    /// (event id, type) published, in order.
    published: &'static [(&'static str, &'static str)],
    /// Sequence numbers reported as batch item failures.
    failed: &'static [&'static str],
}

const EXPECTED: &[Expected] = &[
    Expected {
        file: "outbox-inserts.json",
        published: &[
            ("evt_01kaxb3c4d5e6f7g8h9jkmnpqr", "booking.created"),
            ("evt_01kaxb3c4d5e6f7g8h9jkmnpqs", "booking.cancelled"),
        ],
        failed: &[],
    },
    Expected {
        file: "undecodable-outbox-record.json",
        published: &[("evt_01kaxb3c4d5e6f7g8h9jkmnpqr", "booking.created")],
        failed: &["1100000000017454423021", "1100000000017454423022"],
    },
];

fn dir() -> String {
    format!("{}/../../events/events-relay", env!("CARGO_MANIFEST_DIR"))
}

fn load(file: &str) -> Value {
    let path = format!("{}/{file}", dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn every_sample_event_is_replayed() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("events/events-relay")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|e| e.file.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every file in events/events-relay has an expectation here");

    for expected in EXPECTED {
        let event = load(expected.file);
        // The shape Lambda delivers: it parses as aws_lambda_events' DynamoDB event.
        let typed: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("{}: {e}", expected.file));
        assert!(!typed.records.is_empty(), "{}", expected.file);

        let sns = FakeSns::default();
        let response = handle_batch(&AppState { publisher: &sns }, &event, None)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", expected.file));
        let sent = sns.sent.into_inner().expect("lock");
        let published: Vec<(&str, &str)> = sent.iter().map(|m| (m.event_id.as_str(), m.event_type.as_str())).collect();
        assert_eq!(published, expected.published, "{}", expected.file);
        let failed: Vec<String> =
            response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failed, expected.failed, "{}", expected.file);

        // What goes to SNS is the stored envelope, verbatim.
        for message in &sent {
            let record = typed
                .records
                .iter()
                .find(|r| {
                    matches!(r.change.new_image.get("event_id"), Some(serde_dynamo::AttributeValue::S(id)) if *id == message.event_id)
                })
                .expect("the published event's record");
            let item: OutboxItem = serde_dynamo::from_item(record.change.new_image.clone()).expect("outbox item");
            assert_eq!(message.body, item.envelope);
        }
    }
}

/// The samples are what `shared::events::outbox_put` really writes: each decodable NewImage is
/// rebuilt from its own envelope, attribute for attribute, byte for byte.
#[test]
fn samples_hold_the_items_the_outbox_helper_writes() {
    fn rebuilt<T: EventData>(envelope: &str) -> serde_dynamo::Item {
        let typed: Envelope<T> = Envelope::from_json(envelope).expect("envelope").decode().expect("payload");
        serde_dynamo::to_item(OutboxItem::new(&typed).expect("item")).expect("to item")
    }
    let mut checked = 0;
    for expected in EXPECTED {
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(load(expected.file)).expect("stream event");
        for record in event.records {
            let Ok(item) = serde_dynamo::from_item::<_, OutboxItem>(record.change.new_image.clone()) else {
                continue;
            };
            let rebuilt = match item.event_type.as_str() {
                "booking.created" => rebuilt::<BookingCreated>(&item.envelope),
                "booking.cancelled" if item.parse_envelope().is_ok_and(|e| e.data.is_object()) => {
                    rebuilt::<BookingCancelled>(&item.envelope)
                }
                "booking.expired" => rebuilt::<BookingExpired>(&item.envelope),
                _ => continue,
            };
            assert_eq!(rebuilt, record.change.new_image, "{}: {}", expected.file, item.event_id);
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "every decodable sample record was checked");
}
