//! Least privilege in infra/template.yaml, as rules a change cannot quietly break. No stack
//! needed: `cargo test -p roost-e2e --test template`.
//!
//! - `users` touches DynamoDB only in `USER#` (profiles) and `INBOX#` (inbox) partitions;
//! - `notifications` writes inbox items and can write no profile;
//! - the relay reads this table's stream only, through a role of its own (no `Resource: "*"`);
//! - every function with a private route may read the profile's revocation instant (the sign-out
//!   check of `shared::sessions`), and only that attribute through that statement;
//! - no physical name is fixed: two stacks (stages) in one account cannot collide;
//! - per stage: secrets, e-mail sender, log retention, concurrency, Retain in prod (samconfig);
//! - every function, queue, DLQ and the API alarmed, every alarm to the topic; the dashboard
//!   and the access log format are JSON naming this template's resources.

use std::collections::{BTreeMap, BTreeSet};

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
    // Logs and X-Ray segments (Tracing: Active), as SAM gives the roles it makes.
    assert_eq!(
        managed,
        [
            "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "arn:${AWS::Partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
        ]
    );
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
        [
            "BookingsFunction",
            "ListingsFunction",
            "MessagingFunction",
            "PaymentsFunction",
            "ReviewsFunction",
            "UsersFunction"
        ]
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

/// `samconfig.toml` as (section, key) -> values: the plain `key = "value"` lines it has (one
/// value) and `key = [` lists of one quoted string per line `]`.
fn samconfig() -> BTreeMap<(String, String), Vec<String>> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../samconfig.toml")).expect("samconfig.toml");
    let mut section = String::new();
    let mut out = BTreeMap::new();
    let mut open_list: Option<String> = None;
    let unquote = |v: &str| v.trim().trim_end_matches(',').trim_matches('"').to_owned();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(key) = &open_list {
            if line == "]" {
                open_list = None;
            } else {
                out.entry((section.clone(), key.clone())).or_insert_with(Vec::new).push(unquote(line));
            }
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            if value.trim() == "[" {
                open_list = Some(key.trim().to_owned());
            } else {
                out.insert((section.clone(), key.trim().to_owned()), vec![unquote(value)]);
            }
        }
    }
    out
}

/// One environment's `parameter_overrides` (in its `global` table, so every command gets them).
fn overrides(config: &BTreeMap<(String, String), Vec<String>>, env: &str) -> BTreeMap<String, String> {
    let list = config.get(&(format!("{env}.global.parameters"), "parameter_overrides".to_owned()));
    list.into_iter()
        .flatten()
        .map(|o| o.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or_else(|| panic!("{env}: {o}")))
        .collect()
}

/// The stages the template allows, which are samconfig's environments too.
fn stages(whole: &Value) -> Vec<String> {
    strings(&whole["Parameters"]["Stage"]["AllowedValues"])
}

/// Every stage the template allows has its own samconfig environment: its own stack, its own
/// artifact prefix, and the stage passed to build and deploy; outside dev the template refuses
/// a wildcard CORS origin.
#[test]
fn every_stage_has_its_own_stack_and_only_dev_allows_any_origin() {
    let whole = whole_template();
    let stages = stages(&whole);
    assert_eq!(stages, ["dev", "staging", "prod"]);
    let config = samconfig();
    let get = |env: &str, command: &str, key: &str| {
        config.get(&(format!("{env}.{command}.parameters"), key.to_owned())).cloned().unwrap_or_default()
    };
    let mut stacks = BTreeSet::new();
    for stage in stages.iter().map(String::as_str).chain(["default"]) {
        let stage_passed = if stage == "default" { "dev" } else { stage };
        if stage != "default" {
            assert!(stacks.insert(get(stage, "global", "stack_name")), "{stage}: a stack name of its own");
        }
        assert_eq!(get(stage, "deploy", "s3_prefix"), [format!("roost-{stage_passed}")]);
        assert_eq!(overrides(&config, stage).get("Stage").map(String::as_str), Some(stage_passed), "{stage}");
        // A command's own parameter_overrides would replace the environment's, not add to them.
        for command in ["build", "deploy", "sync"] {
            assert!(get(stage, command, "parameter_overrides").is_empty(), "{stage}.{command}: set them in global");
        }
    }
    let rule = &whole["Rules"]["NoWildcardCorsOutsideDev"];
    assert_eq!(rule["RuleCondition"], json!({"!Not": [{"!Equals": [{"!Ref": "Stage"}, "dev"]}]}));
    assert_eq!(
        rule["Assertions"][0]["Assert"],
        json!({"!Not": [{"!Contains": [{"!Ref": "CorsAllowedOrigins"}, "*"]}]})
    );
}

/// The resources of one type: logical id -> properties.
fn of_type<'a>(resources: &'a Map<String, Value>, kind: &str) -> Vec<(&'a String, &'a Value)> {
    resources.iter().filter(|(_, r)| r["Type"] == kind).map(|(id, r)| (id, &r["Properties"])).collect()
}

/// The logical ids of the template's functions.
fn function_ids(resources: &Map<String, Value>) -> Vec<String> {
    resources.iter().filter(|(_, r)| r["Type"] == "AWS::Serverless::Function").map(|(id, _)| id.clone()).collect()
}

/// `!If [condition, then, AWS::NoValue]` that is set when `parameter` is not empty.
fn set_when_not_empty(whole: &Value, value: &Value, parameter: &str, then: &Value) {
    let condition = format!("Has{parameter}");
    assert_eq!(value, &json!({"!If": [condition, then, {"!Ref": "AWS::NoValue"}]}), "{parameter}");
    assert_eq!(whole["Conditions"][&condition], json!({"!Not": [{"!Equals": [{"!Ref": parameter}, ""]}]}));
    assert_eq!(whole["Parameters"][parameter]["Default"], "", "{parameter}: nothing by default");
}

/// Each stage reads its own secrets: every `*SecretParameter` name a samconfig environment
/// passes is under `/roost/<its stage>/`, and no two stages share one (issue 16).
#[test]
fn every_stage_reads_secrets_of_its_own() {
    let whole = whole_template();
    let config = samconfig();
    let secret_parameters: Vec<&String> = whole["Parameters"]
        .as_object()
        .expect("Parameters")
        .keys()
        .filter(|p| p.ends_with("SecretParameter"))
        .collect();
    assert!(secret_parameters.len() >= 3, "{secret_parameters:?}");
    let mut seen = BTreeMap::new();
    for stage in stages(&whole) {
        let overrides = overrides(&config, &stage);
        for parameter in &secret_parameters {
            let default = whole["Parameters"][parameter.as_str()]["Default"].as_str().unwrap_or_default();
            if default.is_empty() {
                // Optional (the previous webhook secret): unset unless a rotation is under way.
                assert!(overrides.get(parameter.as_str()).is_none_or(|n| n.starts_with(&format!("/roost/{stage}/"))));
                continue;
            }
            assert!(default.starts_with("/roost/dev/"), "{parameter}: the default is dev's ({default})");
            let name = overrides.get(parameter.as_str()).unwrap_or_else(|| panic!("{stage}: no {parameter}"));
            assert!(name.starts_with(&format!("/roost/{stage}/")), "{stage}: {parameter}={name}");
            if let Some(other) = seen.insert(name.clone(), stage.clone()) {
                panic!("{name} is read by {other} and {stage}");
            }
        }
    }
}

/// SES names an identity by its domain in the account and region: each stage declares its own
/// domain, notifications and Cognito send from it, and Cognito goes through SES once the
/// operator says the domain is verified (Cognito refuses an unverified identity).
#[test]
fn every_stage_sends_mail_from_a_domain_of_its_own() {
    let whole = whole_template();
    let resources = template();
    let identities: Vec<&Value> = of_type(&resources, "AWS::SES::EmailIdentity").into_iter().map(|(_, p)| p).collect();
    assert_eq!(identities, [&json!({"EmailIdentity": {"!Ref": "EmailSenderDomain"}})]);
    let config = samconfig();
    let mut domains = BTreeSet::new();
    for stage in stages(&whole) {
        let domain = overrides(&config, &stage).get("EmailSenderDomain").cloned();
        let domain = domain.unwrap_or_else(|| panic!("{stage}: no EmailSenderDomain"));
        assert!(domains.insert(domain.clone()), "{domain}: two stages declare one SES identity");
    }
    let from = json!({"!Sub": "Roost <no-reply@${EmailSenderDomain}>"});
    assert_eq!(resources["NotificationsFunction"]["Properties"]["Environment"]["Variables"]["EMAIL_FROM"], from);
    let email = &resources["UserPool"]["Properties"]["EmailConfiguration"]["!If"];
    assert_eq!(email[0], "CognitoSendsThroughSes");
    assert_eq!(
        whole["Conditions"]["CognitoSendsThroughSes"],
        json!({"!Equals": [{"!Ref": "EmailSenderVerified"}, "true"]})
    );
    assert_eq!(whole["Parameters"]["EmailSenderVerified"]["Default"], "false", "the first deploy cannot use SES");
    assert_eq!(email[1]["EmailSendingAccount"], "DEVELOPER");
    assert_eq!(email[1]["From"], from);
    let source = email[1]["SourceArn"]["!Sub"].as_str().expect("SourceArn: !Sub");
    assert!(source.ends_with(":identity/${EmailSenderDomain}"), "{source}");
    assert_eq!(email[2], json!({"EmailSendingAccount": "COGNITO_DEFAULT"}));
}

/// Log retention is a parameter, set per stage: every log group of the template uses it, and
/// every function has its log group in the template (else Lambda makes one that keeps logs
/// forever).
#[test]
fn every_log_group_keeps_logs_for_the_stage_s_retention() {
    let whole = whole_template();
    let resources = template();
    let mut logged = BTreeSet::new();
    for (id, group) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::Logs::LogGroup") {
        assert_eq!(group["Properties"]["RetentionInDays"], json!({"!Ref": "LogRetentionDays"}), "{id}");
        if let Some(name) = group["Properties"]["LogGroupName"]["!Sub"].as_str() {
            logged.insert(name.to_owned());
        }
    }
    for function in function_ids(&resources) {
        assert!(logged.contains(&format!("/aws/lambda/${{{function}}}")), "{function} has no log group");
    }
    let allowed: Vec<String> =
        list(&whole["Parameters"]["LogRetentionDays"]["AllowedValues"]).iter().map(Value::to_string).collect();
    let config = samconfig();
    for stage in stages(&whole) {
        let days = overrides(&config, &stage).get("LogRetentionDays").cloned().unwrap_or_default();
        assert!(allowed.contains(&days), "{stage}: LogRetentionDays={days} is not one CloudWatch takes");
    }
}

/// In prod the table, the photos, the users and every queue (each holds work not yet done)
/// outlive the stack; elsewhere a stack deletes cleanly. Intrinsics in those attributes need
/// the AWS::LanguageExtensions transform, before SAM's.
#[test]
fn prod_keeps_data_users_and_undelivered_work() {
    let whole = whole_template();
    assert_eq!(whole["Transform"], json!(["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]));
    assert_eq!(whole["Conditions"]["IsProd"], json!({"!Equals": [{"!Ref": "Stage"}, "prod"]}));
    let resources = template();
    let mut kept: Vec<&str> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SQS::Queue")
        .map(|(id, _)| id.as_str())
        .chain(["Table", "PhotosBucket", "UserPool"])
        .collect();
    kept.sort();
    assert!(kept.len() >= 8, "{kept:?}");
    let retain_in_prod = json!({"!If": ["IsProd", "Retain", "Delete"]});
    for id in kept {
        assert_eq!(resources[id]["DeletionPolicy"], retain_in_prod, "{id}");
        assert_eq!(resources[id]["UpdateReplacePolicy"], retain_in_prod, "{id}");
    }
}

/// Reserved concurrency per function and MaximumConcurrency per SQS source are parameters,
/// unset by default (a new account has 10 executions; Lambda refuses to reserve below the
/// unreserved minimum) and set in prod within the account's default 1000 less the 100 Lambda
/// keeps unreserved; an SQS consumer's reservation covers its MaximumConcurrency.
#[test]
fn concurrency_is_a_parameter_per_function_and_per_queue_source() {
    let whole = whole_template();
    let resources = template();
    let prod = overrides(&samconfig(), "prod");
    let mut reserved_in_prod = 0;
    for id in function_ids(&resources) {
        let name = id.strip_suffix("Function").expect("functions are named <Name>Function");
        let properties = &resources[&id]["Properties"];
        let reserved = format!("{name}ReservedConcurrency");
        set_when_not_empty(&whole, &properties["ReservedConcurrentExecutions"], &reserved, &json!({"!Ref": reserved}));
        let reservation: Option<u64> = prod.get(&reserved).map(|n| n.parse().expect("a number"));
        reserved_in_prod += reservation.unwrap_or(0);
        for (event, e) in properties["Events"].as_object().into_iter().flatten().filter(|(_, e)| e["Type"] == "SQS") {
            let maximum = format!("{name}MaximumConcurrency");
            let then = json!({"MaximumConcurrency": {"!Ref": maximum}});
            set_when_not_empty(&whole, &e["Properties"]["ScalingConfig"], &maximum, &then);
            let in_prod: u64 =
                prod.get(&maximum).unwrap_or_else(|| panic!("prod: {maximum}")).parse().expect("a number");
            assert!((2..=1000).contains(&in_prod), "{maximum}={in_prod}");
            assert!(reservation.is_none_or(|r| r >= in_prod), "{id}.{event}: reserve at least {in_prod}");
        }
    }
    assert!((1..=900).contains(&reserved_in_prod), "prod reserves {reserved_in_prod} of 900");
}

/// The template's alarms: logical id -> properties.
fn alarms(resources: &Map<String, Value>) -> Vec<(&String, &Value)> {
    of_type(resources, "AWS::CloudWatch::Alarm")
}

/// Whether an alarm watches `namespace`/`metric` with exactly the one dimension given.
fn watches(alarm: &Value, namespace: &str, metric: &str, dimension: &str, value: &Value) -> bool {
    alarm["Namespace"] == namespace
        && alarm["MetricName"] == metric
        && alarm["Dimensions"] == json!([{"Name": dimension, "Value": value}])
}

#[test]
fn every_function_has_an_errors_and_a_throttles_alarm() {
    let resources = template();
    let alarms = alarms(&resources);
    let functions = function_ids(&resources);
    assert!(functions.len() >= 10, "{functions:?}");
    for function in functions {
        for metric in ["Errors", "Throttles"] {
            let name = json!({"!Ref": function});
            let alarm = alarms.iter().find(|(_, a)| watches(a, "AWS/Lambda", metric, "FunctionName", &name));
            let (id, alarm) = alarm.unwrap_or_else(|| panic!("{function}: no {metric} alarm"));
            assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold", "{id}");
            assert_eq!(alarm["Threshold"], 0, "{id}: any {metric}");
        }
    }
}

/// Every queue has an oldest-message alarm; every queue that receives failures (a redrive
/// target, an event source's on-failure destination) has a depth alarm too.
#[test]
fn every_queue_has_an_age_alarm_and_every_dead_letter_queue_a_depth_alarm() {
    let resources = template();
    let alarms = alarms(&resources);
    let arn_of = |v: &Value| v["!GetAtt"].as_str().and_then(|a| a.strip_suffix(".Arn")).map(str::to_owned);
    let mut dead_letter = BTreeSet::new();
    for resource in resources.values() {
        dead_letter.extend(arn_of(&resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]));
        for event in resource["Properties"]["Events"].as_object().into_iter().flat_map(|e| e.values()) {
            dead_letter.extend(arn_of(&event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]));
        }
    }
    assert_eq!(dead_letter.len(), 3, "{dead_letter:?}");
    for (queue, _) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::SQS::Queue") {
        let name = json!({"!GetAtt": format!("{queue}.QueueName")});
        let alarmed = |metric| alarms.iter().any(|(_, a)| watches(a, "AWS/SQS", metric, "QueueName", &name));
        assert!(alarmed("ApproximateAgeOfOldestMessage"), "{queue}: no age alarm");
        if dead_letter.contains(queue) {
            assert!(alarmed("ApproximateNumberOfMessagesVisible"), "{queue}: no depth alarm");
        }
    }
}

#[test]
fn every_alarm_notifies_the_topic_and_the_topic_an_operator() {
    let whole = whole_template();
    let resources = template();
    let alarms = alarms(&resources);
    assert!(alarms.len() >= 35, "{}", alarms.len());
    let topic = json!([{"!Ref": "AlarmTopic"}]);
    for (id, alarm) in alarms {
        assert_eq!(alarm["AlarmActions"], topic, "{id}");
        assert_eq!(alarm["OKActions"], topic, "{id}");
        assert!(alarm["AlarmDescription"].as_str().is_some_and(|d| d.len() > 40), "{id}: say what it means");
    }
    let subscription = &resources["AlarmEmailSubscription"];
    assert_eq!(subscription["Condition"], "HasAlarmEmail");
    assert_eq!(whole["Conditions"]["HasAlarmEmail"], json!({"!Not": [{"!Equals": [{"!Ref": "AlarmEmail"}, ""]}]}));
    assert_eq!(
        subscription["Properties"],
        json!({"TopicArn": {"!Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"!Ref": "AlarmEmail"}})
    );
}

/// A sweep that never runs publishes nothing: missing data must count as breaching, over a
/// window that spans several scheduled runs.
#[test]
fn the_sweep_not_running_is_an_alarm() {
    let resources = template();
    let schedule = &resources["BookingsSweepFunction"]["Properties"]["Events"]["Sweep"]["Properties"];
    assert_eq!(schedule["ScheduleExpression"], "rate(5 minutes)");
    let name = json!({"!Ref": "BookingsSweepFunction"});
    let alarms = alarms(&resources);
    let (_, alarm) = alarms
        .iter()
        .find(|(_, a)| watches(a, "AWS/Lambda", "Invocations", "FunctionName", &name))
        .expect("an Invocations alarm on the sweep");
    assert_eq!(alarm["TreatMissingData"], "breaching");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
    assert_eq!(alarm["Threshold"], 1);
    assert!(alarm["Period"].as_u64().is_some_and(|p| p >= 3 * 300), "{alarm}");
}

#[test]
fn calendar_sync_not_running_is_an_alarm() {
    let resources = template();
    let schedule = &resources["CalendarSyncFunction"]["Properties"]["Events"]["Sync"]["Properties"];
    assert_eq!(schedule["ScheduleExpression"], "rate(30 minutes)");
    let name = json!({"!Ref": "CalendarSyncFunction"});
    let alarms = alarms(&resources);
    let (_, alarm) = alarms
        .iter()
        .find(|(_, a)| watches(a, "AWS/Lambda", "Invocations", "FunctionName", &name))
        .expect("an Invocations alarm on calendar sync");
    assert_eq!(alarm["TreatMissingData"], "breaching");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
    assert!(alarm["Period"].as_u64().is_some_and(|p| p >= 3 * 1800), "{alarm}");
}

#[test]
fn the_api_s_5xx_rate_and_p99_latency_are_alarmed() {
    let resources = template();
    let alarms = alarms(&resources);
    let api = json!([{"Name": "ApiId", "Value": {"!Ref": "HttpApi"}}]);
    let rate = alarms
        .iter()
        .find(|(_, a)| list(&a["Metrics"]).iter().any(|m| m["MetricStat"]["Metric"]["MetricName"] == "5xx"))
        .map(|(_, a)| list(&a["Metrics"]))
        .expect("a 5xx rate alarm");
    let metric = |id: &str| rate.iter().find(|m| m["Id"] == id).unwrap_or_else(|| panic!("{id}")).clone();
    for (id, name) in [("errors", "5xx"), ("requests", "Count")] {
        let stat = &metric(id)["MetricStat"];
        assert_eq!(stat["Metric"]["Namespace"], "AWS/ApiGateway");
        assert_eq!((&stat["Metric"]["MetricName"], &stat["Metric"]["Dimensions"]), (&json!(name), &api));
        assert_eq!(stat["Stat"], "Sum");
    }
    let expression = metric("rate")["Expression"].as_str().expect("an expression").to_owned();
    assert!(expression.contains("100 * errors / requests"), "{expression}");
    let latency = alarms.iter().find(|(_, a)| a["MetricName"] == "Latency").expect("a latency alarm").1;
    assert_eq!((&latency["Namespace"], &latency["Dimensions"]), (&json!("AWS/ApiGateway"), &api));
    assert_eq!(latency["ExtendedStatistic"], "p99");
}

/// Webhook rejections come from the functions' EMF metrics (namespace Roost, dimension Stage);
/// failed refunds from payment-events' `alert` log lines. A custom metric always names its
/// stage, so two stages in one account never trip each other's alarms.
#[test]
fn webhook_rejections_and_failed_refunds_are_alarmed_per_stage() {
    let resources = template();
    let alarms = alarms(&resources);
    let stage = json!({"!Ref": "Stage"});
    assert!(alarms.iter().any(|(_, a)| watches(a, "Roost", "WebhooksRejected", "Stage", &stage)));
    assert!(alarms.iter().any(|(_, a)| a["MetricName"] == "RefundsFailed"));
    for (id, alarm) in alarms.iter().filter(|(_, a)| !a["Namespace"].as_str().is_some_and(|n| n.starts_with("AWS/"))) {
        let per_stage = alarm["Namespace"]["!Sub"].as_str().is_some_and(|n| n.contains("${Stage}"))
            || list(&alarm["Dimensions"]).contains(&json!({"Name": "Stage", "Value": stage}));
        assert!(per_stage || alarm.get("Metrics").is_some(), "{id}: a custom metric of every stage at once");
    }
}

/// `${Name}` and `${Name.Attribute}` in a `!Sub` string, each checked against the template
/// (a resource, a parameter or a pseudo parameter) and replaced by a placeholder.
fn substitute(text: &str, whole: &Value) -> String {
    let resources = whole["Resources"].as_object().expect("Resources");
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("a closing }");
        let name = &rest[start + 2..end];
        let known = resources.contains_key(name.split('.').next().unwrap_or(name))
            || whole["Parameters"].get(name).is_some()
            || name.starts_with("AWS::");
        assert!(known, "${{{name}}} names nothing in the template");
        out.push_str(&format!("<{name}>"));
        rest = &rest[end + 1..];
    }
    out + rest
}

#[test]
fn the_dashboard_is_json_naming_only_this_template_s_resources() {
    let whole = whole_template();
    let resources = template();
    let dashboards = of_type(&resources, "AWS::CloudWatch::Dashboard");
    let [(_, dashboard)] = dashboards[..] else { panic!("one dashboard: {}", dashboards.len()) };
    let body = substitute(dashboard["DashboardBody"]["!Sub"].as_str().expect("DashboardBody: !Sub"), &whole);
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("dashboard JSON: {e}\n{body}"));
    let widgets = list(&body["widgets"]);
    assert!(widgets.len() >= 10, "{}", widgets.len());
    let text = body.to_string();
    for function in function_ids(&resources) {
        assert!(text.contains(&format!("\"<{function}>\"")), "{function}: not on the dashboard");
        assert!(text.contains(&format!("/aws/lambda/<{function}>")), "{function}: no cold starts");
    }
    for (queue, _) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::SQS::Queue") {
        assert!(text.contains(&format!("<{queue}.QueueName>")), "{queue}: not on the dashboard");
    }
    // Every metric the functions emit (the code's own list), so a new one cannot miss the dashboard.
    for metric in shared::metrics::Business::ALL.map(|m| m.name()) {
        assert!(text.contains(&format!("[\"Roost\",\"{metric}\",\"Stage\",\"<Stage>\"")), "{metric}");
    }
    for widget in &widgets {
        let region = &widget["properties"]["region"];
        assert!(widget["type"] == "text" || region == "<AWS::Region>", "{widget}");
    }
}

/// The access log is one JSON object per request, carrying API Gateway's request id and the
/// Lambda invocation's (what the functions log), and nothing that identifies a person.
#[test]
fn api_access_logs_are_json_with_the_request_ids_and_no_personal_data() {
    let resources = template();
    let settings = &resources["HttpApi"]["Properties"]["AccessLogSettings"];
    let format = settings["Format"].as_str().expect("Format");
    let fields: Map<String, Value> = serde_json::from_str(format).unwrap_or_else(|e| panic!("{e}: {format}"));
    assert_eq!(fields["requestId"], "$context.requestId");
    assert_eq!(fields["integrationRequestId"], "$context.integration.requestId");
    for field in ["routeKey", "status", "responseLatency", "integrationError"] {
        assert!(fields.contains_key(field), "{field}");
    }
    for value in fields.values() {
        let value = value.as_str().expect("every value a quoted variable: valid JSON whatever it holds");
        for personal in ["identity.", "header", "authorization", "querystring", "$context.path"] {
            assert!(!value.to_lowercase().contains(&personal.to_lowercase()), "{value}");
        }
    }
    let group = settings["DestinationArn"]["!GetAtt"].as_str().and_then(|a| a.strip_suffix(".Arn")).expect("GetAtt");
    assert_eq!(resources[group]["Type"], "AWS::Logs::LogGroup");
    let globals = &whole_template()["Globals"]["Function"];
    assert_eq!(globals["Tracing"], "Active", "X-Ray on every function");
}

/// Whether CloudFront's `PathPattern` (`*` any characters, `/` included; `?` one) matches a
/// route's path, its `{parameters}` standing for any segment.
fn cloudfront_matches(pattern: &str, path: &str) -> bool {
    fn matches(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => matches(&p[1..], s) || (!s.is_empty() && matches(p, &s[1..])),
            (Some(b'?'), Some(_)) => matches(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let concrete = crate::auth::concrete(path);
    matches(pattern.as_bytes(), concrete.as_bytes())
}

/// Managed CloudFront policies (the same ids in every account).
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// Issue 22: the CDN is optional (off by default, on in prod); it caches only public GETs, every
/// public read of the issue among them, keys a path's cache on Authorization exactly where a
/// private route shares the path (CloudFront forwards it no other way), forwards everything
/// else uncached with every viewer header, and takes a rate-limiting web ACL.
#[test]
fn the_cdn_caches_only_public_reads_and_is_on_in_prod() {
    let whole = whole_template();
    let resources = template();
    assert_eq!(whole["Parameters"]["CdnEnabled"]["Default"], "false", "off unless a stage turns it on");
    let config = samconfig();
    assert_eq!(overrides(&config, "prod").get("CdnEnabled").map(String::as_str), Some("true"));
    assert_eq!(overrides(&config, "prod").get("CdnCreateWebAcl").map(String::as_str), Some("true"));
    for id in ["CdnDistribution", "CdnPublicCachePolicy", "CdnListingsCachePolicy"] {
        assert_eq!(resources[id]["Condition"], "HasCdn", "{id}");
    }
    let distribution = &resources["CdnDistribution"]["Properties"]["DistributionConfig"];
    let default = &distribution["DefaultCacheBehavior"];
    assert_eq!(default["CachePolicyId"], CACHING_DISABLED, "the rest is never cached");
    assert_eq!(default["OriginRequestPolicyId"], ALL_VIEWER_EXCEPT_HOST, "with Authorization and every header");
    assert_eq!(strings(&default["AllowedMethods"]).len(), 7);

    let routes = crate::auth::routes();
    let behaviours = list(&distribution["CacheBehaviors"]);
    // CloudFront takes the first behaviour whose pattern matches: a route belongs to that one.
    let first_match =
        |path: &str| behaviours.iter().position(|b| cloudfront_matches(b["PathPattern"].as_str().unwrap_or(""), path));
    for (i, b) in behaviours.iter().enumerate() {
        let pattern = b["PathPattern"].as_str().expect("PathPattern");
        assert_eq!(strings(&b["CachedMethods"]), ["GET", "HEAD"], "{pattern}");
        let gets: Vec<_> = routes
            .iter()
            .filter(|r| r.method == "GET" && cloudfront_matches(pattern, &r.path) && first_match(&r.path) == Some(i))
            .collect();
        if b["CachePolicyId"] == CACHING_DISABLED {
            // A pass-through carve-out before a caching behaviour: every header, nothing kept.
            assert_eq!(b["OriginRequestPolicyId"], ALL_VIEWER_EXCEPT_HOST, "{pattern}");
            assert!(!gets.is_empty(), "{pattern} passes no route through");
            continue;
        }
        assert!(!gets.is_empty(), "{pattern} caches no route");
        assert!(gets.iter().all(|r| r.public), "{pattern} would cache a private GET: {gets:?}");
        let policy =
            b["CachePolicyId"]["!Ref"].as_str().unwrap_or_else(|| panic!("{pattern}: a policy of the template"));
        let key = &resources[policy]["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"];
        assert_eq!(key["QueryStringsConfig"]["QueryStringBehavior"], "all", "{pattern}: keyed on the query");
        let headers = strings(&key["HeadersConfig"]["Headers"]);
        assert!(headers.contains(&"Origin".to_owned()), "{pattern}: CORS answers vary on Origin");
        let shares_a_private_route =
            routes.iter().any(|r| !r.public && cloudfront_matches(pattern, &r.path) && first_match(&r.path) == Some(i));
        assert_eq!(headers.contains(&"Authorization".to_owned()), shares_a_private_route, "{pattern}");
        let writes = strings(&b["AllowedMethods"]).len() == 7;
        assert_eq!(writes, shares_a_private_route, "{pattern}: writes pass through where routes need them");
    }
    for read in ["/v1/listings/{id}", "/v1/listings/{id}/availability", "/v1/listings/{id}/reviews", "/v1/search"]
        .into_iter()
        .chain(["/v1/users/{id}", "/v1/openapi.json", "/v1/docs"])
    {
        let pattern = behaviours.iter().find_map(|b| b["PathPattern"].as_str().filter(|p| cloudfront_matches(p, read)));
        assert!(pattern.is_some(), "{read} is not cached by the CDN");
    }

    let acl = &resources["CdnWebAcl"];
    assert_eq!(acl["Condition"], "CreatesCdnWebAcl");
    assert_eq!(acl["Properties"]["Scope"], "CLOUDFRONT");
    let rule = &acl["Properties"]["Rules"][0];
    assert_eq!(rule["Statement"]["RateBasedStatement"]["AggregateKeyType"], "IP");
    assert_eq!(rule["Statement"]["RateBasedStatement"]["Limit"], json!({"!Ref": "CdnRateLimit"}));
    assert!(rule["Action"].get("Block").is_some());
    assert!(distribution["WebACLId"].get("!If").is_some(), "the ACL is attached when there is one");
    assert_eq!(whole["Outputs"]["CdnUrl"]["Condition"], "HasCdn");
    assert!(
        cloudfront_matches("/v1/listings/*", "/v1/listings/{id}/reviews")
            && !cloudfront_matches("/v1/search", "/v1/searches")
    );
}
