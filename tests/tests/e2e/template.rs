//! Least privilege in infra/template.yaml, as rules a change cannot quietly break. No stack
//! needed: `cargo test -p roost-e2e --test template`.
//!
//! - `users` touches DynamoDB only in `USER#` (profiles) and `INBOX#` (inbox) partitions;
//! - `notifications` writes inbox items and can write no profile;
//! - the relay reads this table's stream only, through a role of its own (no `Resource: "*"`);
//! - every function with a private route may read the profile's revocation instant (the sign-out
//!   check of `shared::sessions`), and only that attribute through that statement;
//! - no physical name is fixed: two stacks (stages) in one account cannot collide.

use serde_json::{Map, Value, json};

/// The whole template as JSON.
fn whole_template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    to_json(serde_yaml::from_str(&text).expect("YAML"))
}

/// The template's resources.
fn template() -> Map<String, Value> {
    match whole_template()["Resources"].take() {
        Value::Object(resources) => resources,
        other => panic!("Resources: {other}"),
    }
}

/// YAML as JSON; a CloudFormation short form `!Tag value` becomes `{"!Tag": value}`.
fn to_json(yaml: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).expect("number"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter().map(|(k, v)| (k.as_str().expect("string keys").to_owned(), to_json(v))).collect(),
        ),
        Y::Tagged(tagged) => json!({ tagged.tag.to_string(): to_json(tagged.value) }),
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

fn strings(v: &Value) -> Vec<String> {
    list(v).iter().map(|s| s.as_str().unwrap_or_else(|| panic!("a string: {s}")).to_owned()).collect()
}

/// The inline statements of a SAM function's `Policies`, and the names of the SAM policy
/// templates it uses.
fn function_policies(resources: &Map<String, Value>, id: &str) -> (Vec<Value>, Vec<String>) {
    let function = &resources[id];
    assert_eq!(function["Type"], "AWS::Serverless::Function", "{id}");
    let mut statements = Vec::new();
    let mut templates = Vec::new();
    for policy in list(&function["Properties"]["Policies"]) {
        match policy.get("Statement") {
            Some(s) => statements.extend(list(s)),
            None => templates.extend(policy.as_object().expect("a policy").keys().cloned()),
        }
    }
    (statements, templates)
}

fn dynamodb_actions(statement: &Value) -> Vec<String> {
    strings(&statement["Action"]).into_iter().filter(|a| a.starts_with("dynamodb:")).collect()
}

/// The patterns of `ForAllValues:StringLike` `dynamodb:LeadingKeys`, if the statement has them.
fn leading_keys(statement: &Value) -> Option<Vec<String>> {
    statement["Condition"]["ForAllValues:StringLike"].get("dynamodb:LeadingKeys").map(strings)
}

/// IAM's `StringLike`: `*` any run of characters, `?` one character.
fn like(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(&pattern.chars().collect::<Vec<_>>(), &value.chars().collect::<Vec<_>>())
}

const WRITES: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
];

fn profile_pk() -> String {
    shared::keys::user_profile("3f1e2d4c-5b6a-4789-8abc-def012345678").pk
}

fn inbox_pk() -> String {
    shared::keys::inbox_item("3f1e2d4c-5b6a-4789-8abc-def012345678", "ntf_01kaxb3c4d5e6f7g8h9jkmnp01").pk
}

#[test]
fn the_like_matcher_is_iams() {
    assert!(like("USER#*", "USER#abc"));
    assert!(!like("USER#*", "INBOX#abc"));
    assert!(like("*", ""));
    assert!(like("a?c", "abc") && !like("a?c", "ac"));
}

#[test]
fn users_touches_only_profiles_and_the_inbox() {
    let resources = template();
    let (statements, templates) = function_policies(&resources, "UsersFunction");
    assert!(!templates.iter().any(|t| t.starts_with("DynamoDB")), "no SAM DynamoDB templates: {templates:?}");
    let mut saw_table = false;
    for statement in statements.iter().filter(|s| !dynamodb_actions(s).is_empty()) {
        saw_table = true;
        assert!(!dynamodb_actions(statement).iter().any(|a| a.contains('*') || a.contains("Scan")), "{statement}");
        let keys =
            leading_keys(statement).unwrap_or_else(|| panic!("every table statement names its keys: {statement}"));
        for pattern in &keys {
            assert!(["USER#*", "INBOX#*"].contains(&pattern.as_str()), "{pattern} in {statement}");
        }
        assert_eq!(statement["Resource"], json!({"!GetAtt": "Table.Arn"}), "the table, not its indexes: {statement}");
    }
    assert!(saw_table);
    // The key shapes the code uses are the ones the policy allows.
    let allowed =
        |pk: &str| statements.iter().filter_map(leading_keys).any(|keys| keys.iter().any(|pattern| like(pattern, pk)));
    assert!(allowed(&profile_pk()) && allowed(&inbox_pk()));
}

#[test]
fn notifications_writes_the_inbox_and_no_profile() {
    let resources = template();
    let (statements, templates) = function_policies(&resources, "NotificationsFunction");
    assert!(!templates.iter().any(|t| t.starts_with("DynamoDB")), "{templates:?}");
    let mut writes_inbox = false;
    for statement in &statements {
        let actions = dynamodb_actions(statement);
        if !actions.iter().any(|a| WRITES.contains(&a.as_str()) || a.contains('*')) {
            continue;
        }
        let keys =
            leading_keys(statement).unwrap_or_else(|| panic!("a write statement without LeadingKeys: {statement}"));
        for pattern in &keys {
            assert!(!like(pattern, &profile_pk()), "{pattern} lets notifications overwrite a profile");
        }
        writes_inbox |= keys.iter().any(|pattern| like(pattern, &inbox_pk()));
    }
    assert!(writes_inbox, "notifications must be able to write inbox items");
}

#[test]
fn the_relay_reads_only_this_tables_stream() {
    let resources = template();
    let relay = &resources["EventsRelayFunction"]["Properties"];
    // With a DynamoDB event source and no Role, SAM attaches AWSLambdaDynamoDBExecutionRole
    // (every stream in the account).
    assert_eq!(relay["Role"], json!({"!GetAtt": "EventsRelayRole.Arn"}));
    assert!(relay.get("Policies").is_none(), "Policies are ignored next to Role: put them in EventsRelayRole");
    let role = &resources["EventsRelayRole"]["Properties"];
    let managed: Vec<String> =
        list(&role["ManagedPolicyArns"]).iter().map(|a| a["!Sub"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(managed.iter().all(|a| a.ends_with("service-role/AWSLambdaBasicExecutionRole")), "{managed:?}");
    let statements: Vec<Value> =
        list(&role["Policies"]).iter().flat_map(|p| list(&p["PolicyDocument"]["Statement"])).collect();
    let mut reads = Vec::new();
    for statement in &statements {
        let resources = list(&statement["Resource"]);
        assert!(!resources.contains(&json!("*")), "no Resource \"*\": {statement}");
        for action in strings(&statement["Action"]) {
            if action.starts_with("dynamodb:") {
                reads.push(action.clone());
                let scoped = if action == "dynamodb:ListStreams" {
                    json!({"!Sub": "${Table.Arn}/stream/*"})
                } else {
                    json!({"!GetAtt": "Table.StreamArn"})
                };
                assert_eq!(resources, vec![scoped], "{action}");
            }
        }
    }
    reads.sort();
    assert_eq!(
        reads,
        ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    );
}

#[test]
fn every_function_with_private_routes_may_read_the_revocation_instant() {
    let resources = template();
    let mut checked = Vec::new();
    for (id, resource) in &resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let events = resource["Properties"]["Events"].as_object().cloned().unwrap_or_default();
        let private =
            events.values().any(|e| e["Type"] == "HttpApi" && e["Properties"]["Auth"]["Authorizer"] != "NONE");
        if !private {
            continue;
        }
        let (statements, _) = function_policies(&resources, id);
        let session = statements
            .iter()
            .find(|s| s["Sid"] == "SessionRevocationRead")
            .unwrap_or_else(|| panic!("{id} has private routes and no SessionRevocationRead"));
        assert_eq!(strings(&session["Action"]), ["dynamodb:GetItem"], "{id}");
        assert_eq!(leading_keys(session), Some(vec!["USER#*".to_owned()]), "{id}");
        let attributes = strings(&session["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]);
        assert_eq!(attributes, [shared::keys::PK, shared::keys::SK, shared::sessions::REVOKED_AT_ATTRIBUTE], "{id}");
        assert_eq!(session["Condition"]["StringEqualsIfExists"]["dynamodb:Select"], "SPECIFIC_ATTRIBUTES", "{id}");
        // The check itself is installed by shared::http::run (the Caller extractor skips it
        // without): every function with private routes must serve through it.
        let code_uri = resource["Properties"]["CodeUri"].as_str().expect("CodeUri");
        let main = format!("{}/../infra/{code_uri}/src/main.rs", env!("CARGO_MANIFEST_DIR"));
        let main = std::fs::read_to_string(&main).unwrap_or_else(|e| panic!("{main}: {e}"));
        assert!(main.contains("shared::http::run("), "{id}: serve the router with shared::http::run");
        checked.push(id.clone());
    }
    checked.sort();
    assert_eq!(
        checked,
        ["BookingsFunction", "ListingsFunction", "PaymentsFunction", "ReviewsFunction", "UsersFunction"]
    );
}

/// Properties that give a resource a physical name unique in the account and region.
const PHYSICAL_NAMES: &[&str] = &[
    "TableName",
    "QueueName",
    "TopicName",
    "BucketName",
    "UserPoolName",
    "LogGroupName",
    "FunctionName",
    "RoleName",
    "AlarmName",
    "DashboardName",
    "StateMachineName",
    "ScheduleName",
];

/// Whether a name is made per stack: a `!Sub` naming the stack, the stage or another resource
/// of the template (whose own name is per stack), or a `!Ref`/`!GetAtt` of one.
fn is_per_stack(name: &Value, resources: &Map<String, Value>) -> bool {
    if let Some(sub) = name.get("!Sub").and_then(Value::as_str) {
        return sub.contains("${AWS::StackName}")
            || sub.contains("${Stage}")
            || resources.keys().any(|id| sub.contains(&format!("${{{id}}}")));
    }
    let referenced = name.get("!Ref").or_else(|| name.get("!GetAtt")).and_then(Value::as_str);
    referenced.is_some_and(|r| resources.contains_key(r.split('.').next().unwrap_or(r)))
}

/// Two stages (two stacks) in one account and region must not share a physical name: a fixed
/// name makes the second deploy fail, or worse, point both stages at one resource (issue 16).
#[test]
fn no_physical_name_is_shared_by_two_stacks() {
    let resources = template();
    let mut fixed = Vec::new();
    for (id, resource) in &resources {
        let properties = &resource["Properties"];
        for name in PHYSICAL_NAMES {
            if let Some(value) = properties.get(*name).filter(|v| !is_per_stack(v, &resources)) {
                fixed.push(format!("{id}.{name} = {value}"));
            }
        }
        // A schedule event without a Name gets one SAM derives from its logical id: fixed.
        for (event, e) in properties["Events"].as_object().into_iter().flatten() {
            if matches!(e["Type"].as_str(), Some("Schedule" | "ScheduleV2")) {
                let name = &e["Properties"]["Name"];
                if !is_per_stack(name, &resources) {
                    fixed.push(format!("{id}.Events.{event}.Name = {name}"));
                }
            }
        }
    }
    assert!(fixed.is_empty(), "physical names two stacks would share:\n{}", fixed.join("\n"));
    assert!(
        !is_per_stack(&json!("roost-users"), &resources)
            && is_per_stack(&json!({"!Sub": "${AWS::StackName}-x"}), &resources),
        "the rule tells a fixed name from a per-stack one"
    );
}

/// `samconfig.toml` as (section, key) -> value, for the plain `key = "value"` lines it has.
fn samconfig() -> std::collections::BTreeMap<(String, String), String> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../samconfig.toml")).expect("samconfig.toml");
    let mut section = String::new();
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            out.insert((section.clone(), key.trim().to_owned()), value.trim().trim_matches('"').to_owned());
        }
    }
    out
}

/// Every stage the template allows has its own samconfig environment: its own stack, its own
/// artifact prefix, and the stage passed to build and deploy; outside dev the template refuses
/// a wildcard CORS origin.
#[test]
fn every_stage_has_its_own_stack_and_only_dev_allows_any_origin() {
    let whole = whole_template();
    let stages = strings(&whole["Parameters"]["Stage"]["AllowedValues"]);
    assert_eq!(stages, ["dev", "staging", "prod"]);
    let config = samconfig();
    let get = |env: &str, command: &str, key: &str| {
        config.get(&(format!("{env}.{command}.parameters"), key.to_owned())).cloned().unwrap_or_default()
    };
    let mut stacks = std::collections::BTreeSet::new();
    for stage in &stages {
        assert!(stacks.insert(get(stage, "global", "stack_name")), "{stage}: a stack name of its own");
        assert_eq!(get(stage, "deploy", "s3_prefix"), format!("roost-{stage}"));
        for command in ["build", "deploy"] {
            let overrides = get(stage, command, "parameter_overrides");
            assert!(
                overrides.split_whitespace().any(|o| o == format!("Stage={stage}")),
                "{stage}.{command}: {overrides}"
            );
        }
    }
    let rule = &whole["Rules"]["NoWildcardCorsOutsideDev"];
    assert_eq!(rule["RuleCondition"], json!({"!Not": [{"!Equals": [{"!Ref": "Stage"}, "dev"]}]}));
    assert_eq!(
        rule["Assertions"][0]["Assert"],
        json!({"!Not": [{"!Contains": [{"!Ref": "CorsAllowedOrigins"}, "*"]}]})
    );
}
