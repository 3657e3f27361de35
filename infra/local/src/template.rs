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
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let yaml: serde_yaml::Value = serde_yaml::from_str(text)?;
        let json = yaml_to_json(yaml)?;
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
            let binary = resource
                .pointer("/Metadata/BuildProperties/Binary")
                .and_then(Value::as_str)
                .with_context(|| format!("{id}: Metadata.BuildProperties.Binary names the cargo binary"))?
                .to_string();
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
                binary,
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

pub struct FunctionDef {
    pub logical_id: String,
    pub binary: String,
    pub memory_mb: u64,
    pub timeout_s: u64,
    pub environment: Map<String, Value>,
    pub events: Vec<EventDef>,
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
        assert_eq!((f.binary.as_str(), f.memory_mb, f.timeout_s), ("users", 256, 3));
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

    #[test]
    fn unknown_reference_is_an_error_not_an_empty_string() {
        let resolver = Resolver::with_pseudo_parameters("roost");
        assert!(resolver.resolve(&serde_json::json!({"Ref": "Missing"})).is_err());
    }
}
