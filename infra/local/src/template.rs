//! Reads `infra/template.yaml`: the one description of what runs, so the local stack cannot drift
//! from the cloud. Only what the local runtime acts on is modelled; everything else is ignored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use serde_yaml::value::TaggedValue;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// The template as plain JSON, with CloudFormation's short-form tags (`!Ref x`) rewritten to
/// their long forms (`{"Ref": "x"}`), so resolving them is one recursive function.
pub struct Template {
    pub resources: Map<String, Value>,
    pub parameters: Map<String, Value>,
    globals: Value,
    /// Each condition's value with every parameter at its default (what the local stack
    /// deploys): a resource whose `Condition` is false is not created.
    conditions: BTreeMap<String, bool>,
}

impl Template {
    /// The template at `path` with the `Resources` of `overlay` (`--template-overlay`) merged
    /// in, before anything reads either: the bench's reference functions join the real ones on
    /// the same HTTP API, table and Globals (bench/template.yaml).
    pub fn load_with_overlay(path: &Path, overlay: Option<&Path>) -> Result<Self> {
        let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
        let text = read(path)?;
        let mut json = yaml_text_to_json(&text).with_context(|| format!("parsing {}", path.display()))?;
        if let Some(overlay) = overlay {
            let extra = yaml_text_to_json(&read(overlay)?).with_context(|| format!("parsing {}", overlay.display()))?;
            merge_overlay(&mut json, extra).with_context(|| format!("overlaying {}", overlay.display()))?;
        }
        Self::from_json(json).with_context(|| format!("reading {}", path.display()))
    }

    #[cfg(test)]
    pub fn parse(text: &str) -> Result<Self> {
        Self::from_json(yaml_text_to_json(text)?)
    }

    fn from_json(json: Value) -> Result<Self> {
        let object = |key: &str| json.get(key).and_then(Value::as_object).cloned().unwrap_or_default();
        let parameters = object("Parameters");
        let declared = object("Conditions");
        let evaluator = Conditions { declared: &declared, parameters: &parameters };
        let conditions = declared
            .keys()
            .map(|name| Ok((name.clone(), evaluator.holds(name).with_context(|| format!("condition {name}"))?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            resources: object("Resources"),
            parameters,
            globals: json.get("Globals").cloned().unwrap_or(Value::Null),
            conditions,
        })
    }

    /// The resources of one type that the defaults create (their `Condition`, if any, holds).
    pub fn resources_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, res)| res.get("Type").and_then(Value::as_str) == Some(kind))
            .filter(|(_, res)| {
                res.get("Condition").and_then(Value::as_str).is_none_or(|c| self.conditions.get(c) == Some(&true))
            })
            .map(|(id, res)| (id.as_str(), res.get("Properties").unwrap_or(&Value::Null)))
    }

    /// `AWS::Serverless::Function`s with `Globals.Function` merged in, as SAM does it.
    pub fn functions(&self) -> Result<Vec<FunctionDef>> {
        let globals = self.globals.get("Function").cloned().unwrap_or(Value::Null);
        let mut out = Vec::new();
        for (id, props) in self.resources_of_type("AWS::Serverless::Function") {
            let resource = &self.resources[id];
            let prop = |key: &str| props.get(key).or_else(|| globals.get(key));
            let code = function_code(id, resource, props, &globals)?;
            let mut environment = Map::new();
            for source in [globals.pointer("/Environment/Variables"), props.pointer("/Environment/Variables")] {
                if let Some(vars) = source.and_then(Value::as_object) {
                    environment.extend(vars.clone());
                }
            }
            let mut events = Vec::new();
            if let Some(declared) = props.get("Events").and_then(Value::as_object) {
                for (name, event) in declared {
                    events.push(EventDef {
                        name: name.clone(),
                        kind: event.get("Type").and_then(Value::as_str).unwrap_or_default().to_string(),
                        properties: event.get("Properties").cloned().unwrap_or(Value::Null),
                    });
                }
            }
            out.push(FunctionDef {
                logical_id: id.to_string(),
                code,
                memory_mb: prop("MemorySize").and_then(Value::as_u64).unwrap_or(128),
                timeout_s: prop("Timeout").and_then(Value::as_u64).unwrap_or(3),
                environment,
                events,
            });
        }
        Ok(out)
    }

    /// The HTTP API's default authorizer and whether routes are protected unless they say
    /// `Auth: {Authorizer: NONE}`.
    pub fn jwt_authorizer(&self) -> Option<JwtAuthorizerDef> {
        let (_, api) = self.resources_of_type("AWS::Serverless::HttpApi").next()?;
        let auth = api.get("Auth")?;
        let name = auth.get("DefaultAuthorizer")?.as_str()?;
        let config = auth.pointer(&format!("/Authorizers/{name}/JwtConfiguration"))?;
        Some(JwtAuthorizerDef {
            issuer: config.get("issuer").cloned()?,
            audience: config.get("audience").cloned().unwrap_or(Value::Array(vec![])),
        })
    }

    pub fn cors(&self) -> Option<Value> {
        let (_, api) = self.resources_of_type("AWS::Serverless::HttpApi").next()?;
        api.get("CorsConfiguration").cloned()
    }

    pub fn parameter_default(&self, name: &str) -> Option<Value> {
        self.parameters.get(name)?.get("Default").cloned()
    }
}

/// Evaluates the template's `Conditions` (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`,
/// `Condition`) over the parameters' defaults.
struct Conditions<'a> {
    declared: &'a Map<String, Value>,
    parameters: &'a Map<String, Value>,
}

impl Conditions<'_> {
    fn holds(&self, name: &str) -> Result<bool> {
        self.evaluate(self.declared.get(name).with_context(|| format!("no condition {name}"))?)
    }

    fn evaluate(&self, expression: &Value) -> Result<bool> {
        let Some((function, arguments)) = expression.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next())
        else {
            bail!("not a condition function: {expression}")
        };
        let list = || arguments.as_array().with_context(|| format!("{function} takes a list"));
        match function.as_str() {
            "Condition" | "Fn::Condition" => self.holds(arguments.as_str().context("Condition takes a name")?),
            "Fn::Not" => Ok(!self.evaluate(list()?.first().context("Fn::Not takes one condition")?)?),
            "Fn::And" => list()?.iter().try_fold(true, |all, c| Ok(all && self.evaluate(c)?)),
            "Fn::Or" => list()?.iter().try_fold(false, |any, c| Ok(any || self.evaluate(c)?)),
            "Fn::Equals" => match &list()?[..] {
                [a, b] => Ok(self.value(a)? == self.value(b)?),
                _ => bail!("Fn::Equals takes two values"),
            },
            other => bail!("{other} is not evaluated locally"),
        }
    }

    /// A literal, or a parameter's default, as the string CloudFormation compares.
    fn value(&self, value: &Value) -> Result<String> {
        let literal = match value.get("Ref").and_then(Value::as_str) {
            Some(name) => self
                .parameters
                .get(name)
                .and_then(|p| p.get("Default"))
                .with_context(|| format!("Ref {name}: a parameter with a default"))?,
            None => value,
        };
        match literal {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(scalar(literal)),
            other => bail!("{other} is not a literal or a Ref"),
        }
    }
}

/// What a function runs, from its `Runtime` (property or Globals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionCode {
    /// A custom runtime (`provided.*`): the cargo binary `Metadata.BuildProperties.Binary` names.
    Binary(String),
    /// A `python*` runtime: `Handler` (`module.function`) in `CodeUri`, a directory relative
    /// to the project root, run through awslambdaric.
    Python { runtime: String, handler: String, code_uri: String },
}

/// A python function by its `Runtime`, anything else by its cargo binary.
fn function_code(id: &str, resource: &Value, props: &Value, globals: &Value) -> Result<FunctionCode> {
    let prop = |key: &str| props.get(key).or_else(|| globals.get(key));
    let runtime = prop("Runtime").and_then(Value::as_str).unwrap_or_default();
    if runtime.starts_with("python") {
        let text = |key: &str| {
            prop(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("{id}: a {runtime} function needs {key}"))
        };
        return Ok(FunctionCode::Python {
            runtime: runtime.to_string(),
            handler: text("Handler")?,
            // Per function only: a Globals CodeUri would name one directory for every function.
            code_uri: props
                .get("CodeUri")
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("{id}: a {runtime} function needs CodeUri"))?,
        });
    }
    let binary = resource
        .pointer("/Metadata/BuildProperties/Binary")
        .and_then(Value::as_str)
        .with_context(|| format!("{id}: Metadata.BuildProperties.Binary names the cargo binary"))?;
    Ok(FunctionCode::Binary(binary.to_string()))
}

pub struct FunctionDef {
    pub logical_id: String,
    pub code: FunctionCode,
    pub memory_mb: u64,
    pub timeout_s: u64,
    pub environment: Map<String, Value>,
    pub events: Vec<EventDef>,
}

impl FunctionDef {
    /// The cargo binary to build, for a function that runs one.
    pub fn binary(&self) -> Option<&str> {
        match &self.code {
            FunctionCode::Binary(binary) => Some(binary),
            FunctionCode::Python { .. } => None,
        }
    }
}

pub struct EventDef {
    pub name: String,
    pub kind: String,
    pub properties: Value,
}

pub struct JwtAuthorizerDef {
    pub issuer: Value,
    pub audience: Value,
}

fn yaml_text_to_json(text: &str) -> Result<Value> {
    yaml_to_json(serde_yaml::from_str(text)?)
}

/// Adds the overlay's `Resources` to the template's. An overlay holds nothing else (its
/// functions take the template's Globals, parameters and conditions), and a logical id the
/// template declares already is an error rather than a silent replacement.
fn merge_overlay(template: &mut Value, overlay: Value) -> Result<()> {
    let Value::Object(mut overlay) = overlay else { bail!("an overlay is a mapping with Resources") };
    let resources = match overlay.remove("Resources") {
        Some(Value::Object(resources)) => resources,
        Some(_) => bail!("the overlay's Resources is not a mapping"),
        None => Map::new(),
    };
    if let Some(other) = overlay.keys().next() {
        bail!("an overlay holds only Resources, not {other}");
    }
    let Some(Value::Object(existing)) =
        template.as_object_mut().map(|t| t.entry("Resources").or_insert_with(|| Value::Object(Map::new())))
    else {
        bail!("the template's Resources is not a mapping")
    };
    for (id, resource) in resources {
        if existing.contains_key(&id) {
            bail!("{id} is declared by both the template and the overlay");
        }
        existing.insert(id, resource);
    }
    Ok(())
}

fn yaml_to_json(value: serde_yaml::Value) -> Result<Value> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    Y::String(s) => s,
                    other => serde_yaml::to_string(&other)?.trim().to_string(),
                };
                out.insert(key, yaml_to_json(value)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => expand_tag(*tagged)?,
    })
}

/// `!GetAtt A.B` is the one short form whose long form is not a plain rename.
fn expand_tag(tagged: TaggedValue) -> Result<Value> {
    let tag = tagged.tag.to_string();
    let name = tag.trim_start_matches('!');
    let inner = yaml_to_json(tagged.value)?;
    let key = if name == "Ref" { "Ref".to_string() } else { format!("Fn::{name}") };
    let inner = match (name, inner) {
        ("GetAtt", Value::String(s)) => {
            let Some((resource, attribute)) = s.split_once('.') else {
                bail!("!GetAtt {s}: expected Resource.Attribute")
            };
            Value::Array(vec![resource.into(), attribute.into()])
        }
        (_, inner) => inner,
    };
    Ok(Value::Object(Map::from_iter([(key, inner)])))
}

/// Physical values of the resources the local runtime created, for `Ref`, `GetAtt` and `Sub`.
#[derive(Default)]
pub struct Resolver {
    pub refs: BTreeMap<String, String>,
    pub attributes: BTreeMap<(String, String), String>,
}

impl Resolver {
    pub fn with_pseudo_parameters(stack_name: &str) -> Self {
        let mut r = Self::default();
        for (k, v) in [
            ("AWS::Region", REGION),
            ("AWS::AccountId", ACCOUNT_ID),
            ("AWS::StackName", stack_name),
            ("AWS::Partition", "aws"),
            ("AWS::URLSuffix", "amazonaws.com"),
        ] {
            r.refs.insert(k.into(), v.into());
        }
        r
    }

    pub fn resolve(&self, value: &Value) -> Result<Value> {
        Ok(match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().into_iter().next().context("empty map")?;
                match key.as_str() {
                    "Ref" => Value::String(self.reference(arg.as_str().context("Ref takes a name")?)?),
                    "Fn::GetAtt" => {
                        let parts: Vec<&str> =
                            arg.as_array().context("GetAtt")?.iter().filter_map(Value::as_str).collect();
                        let [resource, attribute] = parts[..] else { bail!("GetAtt takes [Resource, Attribute]") };
                        Value::String(self.attribute(resource, attribute)?)
                    }
                    "Fn::Sub" => Value::String(self.substitute(arg)?),
                    "Fn::Join" => {
                        let parts = arg.as_array().context("Join")?;
                        let separator = parts.first().and_then(Value::as_str).unwrap_or("");
                        let items = self.resolve(parts.get(1).context("Join list")?)?;
                        let items: Vec<String> = items.as_array().context("Join list")?.iter().map(scalar).collect();
                        Value::String(items.join(separator))
                    }
                    _ => Value::Object(Map::from_iter([(key.clone(), self.resolve(arg)?)])),
                }
            }
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| Ok((k.clone(), self.resolve(v)?))).collect::<Result<_>>()?)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect::<Result<_>>()?),
            other => other.clone(),
        })
    }

    pub fn resolve_string(&self, value: &Value) -> Result<String> {
        Ok(scalar(&self.resolve(value)?))
    }

    fn reference(&self, name: &str) -> Result<String> {
        self.refs.get(name).cloned().with_context(|| format!("Ref {name}: not a resource the local runtime creates"))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String> {
        self.attributes
            .get(&(resource.to_string(), attribute.to_string()))
            .cloned()
            .with_context(|| format!("GetAtt {resource}.{attribute}: not known locally"))
    }

    fn substitute(&self, arg: &Value) -> Result<String> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(parts) => (
                parts.first().and_then(Value::as_str).context("Sub template")?,
                parts.get(1).and_then(Value::as_object).cloned().unwrap_or_default(),
            ),
            _ => bail!("Sub takes a string or [string, map]"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').context("unclosed ${ in Sub")? + start;
            let name = &rest[start + 2..end];
            let value = if let Some(v) = vars.get(name) {
                self.resolve_string(v)?
            } else if let Some((resource, attribute)) = name.split_once('.') {
                self.attribute(resource, attribute)?
            } else {
                self.reference(name)?
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Globals:
  Function:
    MemorySize: 256
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: users
    Properties:
      Environment:
        Variables:
          STREAM: !GetAtt Table.StreamArn
          ISSUER: !Sub "https://cognito-idp.${AWS::Region}.amazonaws.com/${Pool}"
      Events:
        Health:
          Type: HttpApi
          Properties:
            Path: /v1/health
            Method: GET
"#;

    #[test]
    fn functions_merge_globals_and_intrinsics_resolve() {
        let template = Template::parse(TEMPLATE).unwrap();
        let functions = template.functions().unwrap();
        let f = &functions[0];
        assert_eq!((f.binary(), f.memory_mb, f.timeout_s), (Some("users"), 256, 3));
        assert_eq!(f.events[0].kind, "HttpApi");

        let mut resolver = Resolver::with_pseudo_parameters("roost");
        resolver.refs.insert("Table".into(), "roost-table".into());
        resolver.refs.insert("Pool".into(), "us-east-1_abc".into());
        resolver.attributes.insert(("Table".into(), "StreamArn".into()), "arn:stream".into());
        let env: Vec<String> = ["TABLE_NAME", "STREAM", "ISSUER"]
            .iter()
            .map(|k| resolver.resolve_string(&f.environment[*k]).unwrap())
            .collect();
        assert_eq!(env, ["roost-table", "arn:stream", "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"]);
    }

    #[test]
    fn conditions_hold_for_the_defaults_and_decide_which_resources_exist() {
        let template = Template::parse(
            r#"
Parameters:
  Stage: {Type: String, Default: dev}
  AlarmEmail: {Type: String, Default: ""}
  Days: {Type: Number, Default: 30}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  HasAlarmEmail: !Not [!Equals [!Ref AlarmEmail, ""]]
  Keeps30Days: !Equals [!Ref Days, 30]
  DevWithoutEmail: !And [!Not [!Condition IsProd], !Not [!Condition HasAlarmEmail]]
  Either: !Or [!Condition IsProd, !Condition Keeps30Days]
Resources:
  Topic: {Type: AWS::SNS::Topic}
  Email: {Type: AWS::SNS::Subscription, Condition: HasAlarmEmail}
  DevOnly: {Type: AWS::SNS::Subscription, Condition: DevWithoutEmail}
"#,
        )
        .unwrap();
        let holds: Vec<(&str, bool)> = template.conditions.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            holds,
            [
                ("DevWithoutEmail", true),
                ("Either", true),
                ("HasAlarmEmail", false),
                ("IsProd", false),
                ("Keeps30Days", true)
            ]
        );
        let subscriptions: Vec<&str> = template.resources_of_type("AWS::SNS::Subscription").map(|(id, _)| id).collect();
        assert_eq!(subscriptions, ["DevOnly"]);
        assert_eq!(template.resources_of_type("AWS::SNS::Topic").count(), 1);
    }

    #[test]
    fn a_condition_it_cannot_evaluate_fails_the_load() {
        let text = "Conditions:\n  C: !Equals [!Ref Missing, x]\nResources: {}\n";
        let err = Template::parse(text).err().expect("an error");
        assert!(format!("{err:#}").contains("Ref Missing"), "{err:#}");
    }

    /// `TEMPLATE` and `overlay` as files, loaded as `--template-overlay` loads them.
    fn load_overlaid(overlay: &str) -> Result<Template> {
        let dir = std::env::temp_dir().join(format!("roost-overlay-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("template.yaml"), TEMPLATE)?;
        std::fs::write(dir.join("overlay.yaml"), overlay)?;
        let loaded = Template::load_with_overlay(&dir.join("template.yaml"), Some(&dir.join("overlay.yaml")));
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn an_overlay_adds_its_resources_and_its_python_function_takes_the_globals() {
        let template = load_overlaid(
            r#"
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: app.handler
      CodeUri: bench/python-boto3/
      Events:
        Get:
          Type: HttpApi
          Properties:
            Path: /py/{id}
            Method: GET
  Hello:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: bench-hello}}
    Properties: {MemorySize: 128}
"#,
        )
        .expect("the overlay merges");
        let functions = template.functions().expect("functions");
        let by_id = |id: &str| functions.iter().find(|f| f.logical_id == id).unwrap_or_else(|| panic!("no {id}"));
        assert_eq!(by_id("Fn").binary(), Some("users"), "the template's own function stays");
        assert_eq!((by_id("Hello").binary(), by_id("Hello").memory_mb), (Some("bench-hello"), 128));
        let py = by_id("Py");
        assert_eq!(
            py.code,
            FunctionCode::Python {
                runtime: "python3.11".into(),
                handler: "app.handler".into(),
                code_uri: "bench/python-boto3/".into()
            }
        );
        assert_eq!((py.binary(), py.memory_mb), (None, 256), "no cargo binary; Globals' MemorySize");
        assert!(py.environment.contains_key("TABLE_NAME"), "Globals' variables reach an overlay's function");
        assert_eq!(py.events[0].properties["Path"], "/py/{id}");
        assert_eq!(template.resources_of_type("AWS::DynamoDB::Table").count(), 1);
    }

    #[test]
    fn an_overlay_may_not_redeclare_a_resource_nor_hold_anything_but_resources() {
        let duplicate =
            load_overlaid("Resources:\n  Table:\n    Type: AWS::DynamoDB::Table\n").err().expect("an error");
        assert!(format!("{duplicate:#}").contains("Table is declared by both"), "{duplicate:#}");
        let globals =
            load_overlaid("Globals:\n  Function: {MemorySize: 1024}\nResources: {}\n").err().expect("an error");
        assert!(format!("{globals:#}").contains("only Resources, not Globals"), "{globals:#}");
    }

    #[test]
    fn a_python_function_needs_a_handler_and_a_code_uri() {
        let text = "Globals:\n  Function:\n    Runtime: python3.11\nResources:\n  Py:\n    Type: AWS::Serverless::Function\n    Properties: {Handler: app.handler}\n";
        let err = Template::parse(text).expect("parses").functions().err().expect("an error");
        assert!(format!("{err:#}").contains("Py: a python3.11 function needs CodeUri"), "{err:#}");
    }

    #[test]
    fn unknown_reference_is_an_error_not_an_empty_string() {
        let resolver = Resolver::with_pseudo_parameters("roost");
        assert!(resolver.resolve(&serde_json::json!({"Ref": "Missing"})).is_err());
    }
}
