//! The local runtime's fault switches (`<runtime_url>/_roost/faults`, docs/local-runtime.md
//! "Injected faults"): a guard that switches a mode on and off again when dropped, and the
//! proxy's counters.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Stack, client, json_of};

fn url() -> String {
    format!("{}/_roost/faults", Stack::get().runtime_url)
}

/// The proxy's state: `{mode, injected, forwarded, forwarded_by_function}`.
pub async fn state() -> Value {
    json_of(client().get(url()).send().await.expect("GET faults"), 200).await
}

/// A fault mode that is switched off when dropped, also when the test panics: the stack is
/// shared, and a mode left on would fail whatever runs next.
pub struct FaultMode {
    /// The answer to the POST: the mode as the runtime understood it.
    pub mode: Value,
}

impl FaultMode {
    /// Switches `mode` on (it replaces any mode on); asserts the runtime took it.
    pub async fn on(mode: Value) -> FaultMode {
        let response = client().post(url()).json(&mode).send().await.expect("POST faults");
        let answer = json_of(response, 200).await;
        assert_eq!(answer["mode"]["rate"], mode["rate"], "{answer}");
        FaultMode { mode: answer["mode"].clone() }
    }

    /// Switches it off now and returns the state after (the guard's drop is then a no-op
    /// DELETE, which the runtime answers the same).
    pub async fn off(self) -> Value {
        let answer = json_of(client().delete(url()).send().await.expect("DELETE faults"), 200).await;
        assert_eq!(answer["mode"], Value::Null, "switched off: {answer}");
        answer
    }
}

impl Drop for FaultMode {
    fn drop(&mut self) {
        // Drop cannot await; a plain thread with its own runtime does the DELETE.
        let url = url();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async { client().delete(&url).send().await.map(|r| r.status().as_u16()) })
        })
        .join();
        assert!(matches!(done, Ok(Ok(200))) || std::thread::panicking(), "switching faults off failed: {done:?}");
    }
}

/// The counter at a JSON pointer of a state (0 when absent).
pub fn count(state: &Value, pointer: &str) -> u64 {
    state.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// What was injected between two states, by service and kind (only what grew).
pub fn injected_between(before: &Value, after: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (service, kinds) in after["injected"].as_object().into_iter().flatten() {
        for (kind, n) in kinds.as_object().into_iter().flatten() {
            let grew = n.as_u64().unwrap_or(0).saturating_sub(count(before, &format!("/injected/{service}/{kind}")));
            if grew > 0 {
                out.entry(service.clone()).or_default().insert(kind.clone(), grew);
            }
        }
    }
    out
}

/// The total of [`injected_between`].
pub fn total(injected: &BTreeMap<String, BTreeMap<String, u64>>) -> u64 {
    injected.values().flat_map(|kinds| kinds.values()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_grew_is_counted() {
        let before = json!({"injected": {"sqs": {"error": 2, "hang": 0}, "ses": {"late": 1}}});
        let after =
            json!({"injected": {"sqs": {"error": 5, "hang": 0}, "ses": {"late": 1}, "stripe": {"throttle": 1}}});
        let got = injected_between(&before, &after);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got["sqs"]["error"], 3);
        assert_eq!(got["stripe"]["throttle"], 1);
        assert_eq!(total(&got), 4);
    }
}
