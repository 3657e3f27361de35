//! Creates in moto what the template declares, and records each resource's physical values so
//! `Ref`/`GetAtt`/`Sub` in the functions' environment resolve to them.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use crate::aws::Moto;
use crate::template::{ACCOUNT_ID, REGION, Resolver, Template};

pub struct Options {
    pub stack_name: String,
    /// Test mode shrinks SQS visibility timeouts (keeping `maxReceiveCount`) so redrive takes seconds.
    pub visibility_timeout_cap: Option<u64>,
}

#[derive(Default, serde::Serialize)]
pub struct Provisioned {
    #[serde(skip)]
    pub resolver: Resolver,
    pub tables: BTreeMap<String, String>,
    /// logical id -> queue url
    pub queues: BTreeMap<String, String>,
    pub buckets: BTreeMap<String, String>,
    pub user_pools: BTreeMap<String, String>,
    pub user_pool_clients: BTreeMap<String, String>,
    pub topics: BTreeMap<String, String>,
    pub secret_parameters: BTreeMap<String, String>,
    /// Template parameter (logical name) -> the generated secret value, for wiring that needs
    /// the value itself (the Stripe webhook secret is registered with localstripe).
    #[serde(skip)]
    pub secret_values: BTreeMap<String, String>,
}

pub async fn provision(moto: &Moto, template: &Template, options: &Options) -> Result<Provisioned> {
    let mut out = Provisioned { resolver: Resolver::with_pseudo_parameters(&options.stack_name), ..Default::default() };
    let creator = Creator { moto, template, options };
    creator.secret_parameters(&mut out).await?;
    creator.tables(&mut out).await?;
    creator.queues(&mut out).await?;
    creator.topics(&mut out).await?;
    creator.subscriptions(&mut out).await?;
    creator.buckets(&mut out).await?;
    creator.user_pools(&mut out).await?;
    creator.user_pool_clients(&mut out).await?;
    creator.user_pool_groups(&mut out).await?;
    creator.email_identities(&mut out).await?;
    creator.ssm_parameters(&mut out).await?;
    creator.functions_and_apis(&mut out);
    Ok(out)
}

/// Creates one kind of resource at a time, in the order `Ref`/`GetAtt` between them need.
struct Creator<'a> {
    moto: &'a Moto,
    template: &'a Template,
    options: &'a Options,
}

impl Creator<'_> {
    /// The physical name of a resource whose template gives it none.
    fn physical(&self, logical: &str) -> String {
        format!("{}-{logical}", self.options.stack_name)
    }

    async fn secret_parameters(&self, out: &mut Provisioned) -> Result<()> {
        for (name, param) in &self.template.parameters {
            let default = self.template.parameter_default(name).map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
            let value = default.clone().unwrap_or_default();
            out.resolver.refs.insert(name.clone(), value.clone());
            // Convention: a parameter named `*SecretParameter` holds the NAME of an SSM SecureString
            // that operators create; locally we create it with a random value.
            if name.ends_with("SecretParameter") && !value.is_empty() {
                let secret = local_secret(name);
                self.moto
                    .json(
                        "ssm",
                        "AmazonSSM.PutParameter",
                        json!({"Name": value, "Value": secret, "Type": "SecureString", "Overwrite": true}),
                    )
                    .await
                    .with_context(|| format!("creating SSM parameter {value}"))?;
                out.secret_values.insert(name.clone(), secret);
                out.secret_parameters
                    .insert(value, param.get("Description").and_then(Value::as_str).unwrap_or("").into());
            }
        }
        Ok(())
    }

    async fn tables(&self, out: &mut Provisioned) -> Result<()> {
        for (id, props) in self.template.resources_of_type("AWS::DynamoDB::Table") {
            let name = optional_name(&out.resolver, props, "TableName")?.unwrap_or_else(|| self.physical(id));
            let mut request = Map::new();
            request.insert("TableName".into(), name.clone().into());
            for key in ["AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
                if let Some(v) = props.get(key) {
                    request.insert(key.into(), out.resolver.resolve(v)?);
                }
            }
            request.insert("BillingMode".into(), props.get("BillingMode").cloned().unwrap_or("PAY_PER_REQUEST".into()));
            if let Some(view) = props.pointer("/StreamSpecification/StreamViewType") {
                request.insert("StreamSpecification".into(), json!({"StreamEnabled": true, "StreamViewType": view}));
            }
            let created = self
                .moto
                .dynamodb("CreateTable", Value::Object(request))
                .await
                .with_context(|| format!("table {id}"))?;
            let description = &created["TableDescription"];
            out.resolver.refs.insert(id.into(), name.clone());
            out.resolver.attributes.insert((id.into(), "Arn".into()), str_at(description, "TableArn"));
            if let Some(stream) = description.get("LatestStreamArn").and_then(Value::as_str) {
                out.resolver.attributes.insert((id.into(), "StreamArn".into()), stream.into());
            }
            out.tables.insert(id.into(), name);
        }
        Ok(())
    }

    /// Queues in two passes: a redrive policy names its DLQ by ARN, which must exist first.
    async fn queues(&self, out: &mut Provisioned) -> Result<()> {
        let queues: Vec<(&str, &Value)> = self.template.resources_of_type("AWS::SQS::Queue").collect();
        for (id, props) in &queues {
            self.queue(out, id, props).await?;
        }
        for (id, props) in &queues {
            if let Some(policy) = props.get("RedrivePolicy") {
                let policy = out.resolver.resolve(policy)?;
                self.moto
                    .sqs(
                        "SetQueueAttributes",
                        json!({"QueueUrl": out.queues[*id], "Attributes": {"RedrivePolicy": policy.to_string()}}),
                    )
                    .await
                    .with_context(|| format!("redrive policy of {id}"))?;
            }
        }
        Ok(())
    }

    /// One queue, without its redrive policy.
    async fn queue(&self, out: &mut Provisioned, id: &str, props: &Value) -> Result<()> {
        let fifo = props.get("FifoQueue").and_then(Value::as_bool).unwrap_or(false);
        let mut name = optional_name(&out.resolver, props, "QueueName")?.unwrap_or_else(|| self.physical(id));
        if fifo && !name.ends_with(".fifo") {
            name.push_str(".fifo");
        }
        let mut attributes = Map::new();
        for key in
            ["MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "DelaySeconds", "ContentBasedDeduplication"]
        {
            if let Some(v) = props.get(key) {
                attributes.insert(key.into(), Value::String(scalar(v)));
            }
        }
        if fifo {
            attributes.insert("FifoQueue".into(), "true".into());
        }
        let visibility = props.get("VisibilityTimeout").and_then(Value::as_u64).unwrap_or(30);
        let visibility = self.options.visibility_timeout_cap.map_or(visibility, |cap| visibility.min(cap));
        attributes.insert("VisibilityTimeout".into(), visibility.to_string().into());
        let created = self
            .moto
            .sqs("CreateQueue", json!({"QueueName": name, "Attributes": attributes}))
            .await
            .with_context(|| format!("queue {id}"))?;
        let url = str_at(&created, "QueueUrl");
        out.resolver.refs.insert(id.into(), url.clone());
        out.resolver.attributes.insert((id.into(), "Arn".into()), format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"));
        out.resolver.attributes.insert((id.into(), "QueueName".into()), name.clone());
        out.resolver.attributes.insert((id.into(), "QueueUrl".into()), url.clone());
        out.queues.insert(id.into(), url);
        Ok(())
    }

    async fn topics(&self, out: &mut Provisioned) -> Result<()> {
        for (id, props) in self.template.resources_of_type("AWS::SNS::Topic") {
            let name = optional_name(&out.resolver, props, "TopicName")?.unwrap_or_else(|| self.physical(id));
            self.moto.query("sns", &[("Action", "CreateTopic".into()), ("Name", name.clone())]).await?;
            let arn = format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}");
            out.resolver.refs.insert(id.into(), arn.clone());
            out.resolver.attributes.insert((id.into(), "TopicArn".into()), arn.clone());
            out.resolver.attributes.insert((id.into(), "TopicName".into()), name);
            out.topics.insert(id.into(), arn);
        }
        Ok(())
    }

    async fn subscriptions(&self, out: &mut Provisioned) -> Result<()> {
        for (id, props) in self.template.resources_of_type("AWS::SNS::Subscription") {
            let props = out.resolver.resolve(props)?;
            let mut params = vec![
                ("Action", "Subscribe".to_string()),
                ("TopicArn", str_at(&props, "TopicArn")),
                ("Protocol", str_at(&props, "Protocol")),
                ("Endpoint", str_at(&props, "Endpoint")),
            ];
            let mut attributes = Vec::new();
            if let Some(raw) = props.get("RawMessageDelivery") {
                attributes.push(("RawMessageDelivery", scalar(raw)));
            }
            if let Some(filter) = props.get("FilterPolicy") {
                attributes.push(("FilterPolicy", filter.to_string()));
            }
            if let Some(scope) = props.get("FilterPolicyScope") {
                attributes.push(("FilterPolicyScope", scalar(scope)));
            }
            let keys: Vec<String> = (1..=attributes.len()).map(|i| format!("Attributes.entry.{i}.key")).collect();
            let values: Vec<String> = (1..=attributes.len()).map(|i| format!("Attributes.entry.{i}.value")).collect();
            for (i, (key, value)) in attributes.into_iter().enumerate() {
                params.push((&keys[i], key.to_string()));
                params.push((&values[i], value));
            }
            self.moto.query("sns", &params).await.with_context(|| format!("subscription {id}"))?;
        }
        Ok(())
    }

    async fn buckets(&self, out: &mut Provisioned) -> Result<()> {
        for (id, props) in self.template.resources_of_type("AWS::S3::Bucket") {
            let name = optional_name(&out.resolver, props, "BucketName")?
                .unwrap_or_else(|| self.physical(id).to_lowercase().replace('_', "-"));
            self.moto
                .rest("s3", reqwest::Method::PUT, &format!("/{name}"), None)
                .await
                .with_context(|| format!("bucket {id}"))?;
            out.resolver.refs.insert(id.into(), name.clone());
            out.resolver.attributes.insert((id.into(), "Arn".into()), format!("arn:aws:s3:::{name}"));
            out.resolver
                .attributes
                .insert((id.into(), "RegionalDomainName".into()), format!("{name}.s3.{REGION}.amazonaws.com"));
            out.buckets.insert(id.into(), name);
        }
        Ok(())
    }

    async fn user_pools(&self, out: &mut Provisioned) -> Result<()> {
        const COPIED: &[&str] = &[
            "UsernameAttributes",
            "AutoVerifiedAttributes",
            "Policies",
            "Schema",
            "AccountRecoverySetting",
            "MfaConfiguration",
        ];
        for (id, props) in self.template.resources_of_type("AWS::Cognito::UserPool") {
            let named = Named { what: "user pool", request_field: "PoolName", template_field: "UserPoolName" };
            let created = self.cognito(out, id, props, "CreateUserPool", COPIED, named).await?;
            let pool_id = str_at(&created["UserPool"], "Id");
            out.resolver.refs.insert(id.into(), pool_id.clone());
            out.resolver.attributes.insert((id.into(), "Arn".into()), str_at(&created["UserPool"], "Arn"));
            out.resolver
                .attributes
                .insert((id.into(), "ProviderURL".into()), format!("cognito-idp.{REGION}.amazonaws.com/{pool_id}"));
            out.resolver.attributes.insert((id.into(), "UserPoolId".into()), pool_id.clone());
            out.user_pools.insert(id.into(), pool_id);
        }
        Ok(())
    }

    async fn user_pool_clients(&self, out: &mut Provisioned) -> Result<()> {
        const COPIED: &[&str] = &[
            "UserPoolId",
            "ExplicitAuthFlows",
            "GenerateSecret",
            "PreventUserExistenceErrors",
            "EnableTokenRevocation",
            "AccessTokenValidity",
            "IdTokenValidity",
            "RefreshTokenValidity",
            "TokenValidityUnits",
        ];
        for (id, props) in self.template.resources_of_type("AWS::Cognito::UserPoolClient") {
            let named = Named { what: "client", request_field: "ClientName", template_field: "ClientName" };
            let created = self.cognito(out, id, props, "CreateUserPoolClient", COPIED, named).await?;
            let client_id = str_at(&created["UserPoolClient"], "ClientId");
            out.resolver.refs.insert(id.into(), client_id.clone());
            out.user_pool_clients.insert(id.into(), client_id);
        }
        Ok(())
    }

    /// A Cognito resource from its resolved template properties: the `copied` ones as they are,
    /// and its name (the template's, else the physical name).
    async fn cognito(
        &self,
        out: &Provisioned,
        id: &str,
        props: &Value,
        action: &str,
        copied: &[&str],
        named: Named,
    ) -> Result<Value> {
        // Only the copied properties are resolved: the others (EmailConfiguration's !If, ...)
        // are not emulated, and may use intrinsics the resolver does not evaluate.
        let resolved = out.resolver.resolve(&Value::Object(pick(props, copied)))?;
        let mut request = resolved.as_object().cloned().unwrap_or_default();
        let name = match props.get(named.template_field) {
            Some(name) => out.resolver.resolve(name)?,
            None => self.physical(id).into(),
        };
        request.insert(named.request_field.into(), name);
        self.moto.cognito(action, Value::Object(request)).await.with_context(|| format!("{} {id}", named.what))
    }

    async fn user_pool_groups(&self, out: &mut Provisioned) -> Result<()> {
        for (id, props) in self.template.resources_of_type("AWS::Cognito::UserPoolGroup") {
            let props = out.resolver.resolve(props)?;
            self.moto
                .cognito(
                    "CreateGroup",
                    Value::Object(pick(&props, &["GroupName", "UserPoolId", "Description", "Precedence"])),
                )
                .await
                .with_context(|| format!("group {id}"))?;
            out.resolver.refs.insert(id.into(), str_at(&props, "GroupName"));
        }
        Ok(())
    }

    async fn email_identities(&self, out: &mut Provisioned) -> Result<()> {
        for (id, props) in self.template.resources_of_type("AWS::SES::EmailIdentity") {
            let identity = out.resolver.resolve_string(props.get("EmailIdentity").context("EmailIdentity")?)?;
            self.moto
                .rest("ses", reqwest::Method::POST, "/v2/email/identities", Some(json!({"EmailIdentity": identity})))
                .await
                .with_context(|| format!("SES identity {id}"))?;
            out.resolver.refs.insert(id.into(), identity);
        }
        Ok(())
    }

    async fn ssm_parameters(&self, out: &mut Provisioned) -> Result<()> {
        for (id, props) in self.template.resources_of_type("AWS::SSM::Parameter") {
            let props = out.resolver.resolve(props)?;
            let name = str_at(&props, "Name");
            let request = json!({"Name": name, "Value": str_at(&props, "Value"), "Type": str_at(&props, "Type"), "Overwrite": true});
            self.moto
                .json("ssm", "AmazonSSM.PutParameter", request)
                .await
                .with_context(|| format!("parameter {id}"))?;
            out.resolver.refs.insert(id.into(), name);
        }
        Ok(())
    }

    /// Nothing to create: functions run as local processes and the HTTP API is the gateway.
    fn functions_and_apis(&self, out: &mut Provisioned) {
        for (id, _) in self.template.resources_of_type("AWS::Serverless::Function") {
            out.resolver.refs.insert(id.into(), id.into());
            out.resolver
                .attributes
                .insert((id.into(), "Arn".into()), format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{id}"));
        }
        for (id, _) in self.template.resources_of_type("AWS::Serverless::HttpApi") {
            out.resolver.refs.insert(id.into(), "local".into());
        }
    }
}

/// Where a Cognito resource's name goes in the create request, and where the template gives it.
struct Named {
    /// For error messages.
    what: &'static str,
    request_field: &'static str,
    template_field: &'static str,
}

fn optional_name(resolver: &Resolver, props: &Value, key: &str) -> Result<Option<String>> {
    props.get(key).map(|v| resolver.resolve_string(v)).transpose()
}

fn pick(props: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter().filter_map(|k| props.get(*k).map(|v| ((*k).to_string(), v.clone()))).collect()
}

fn str_at(value: &Value, key: &str) -> String {
    value.get(key).map(scalar).unwrap_or_default()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A local value for the secret parameter `name`: shaped like what it stands for where the
/// shape matters (Stripe keys are `sk_test_...`, webhook signing secrets `whsec_...`), else 48
/// random bytes, base64 (as the template's descriptions say).
fn local_secret(name: &str) -> String {
    if name.starts_with("StripeSecretKey") {
        format!("sk_test_{}", random_alphanumeric(32))
    } else if name.starts_with("StripeWebhookSecret") {
        format!("whsec_{}", random_alphanumeric(32))
    } else {
        random_base64(48)
    }
}

fn random_alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())])).collect()
}

/// Secrets are documented (template Description) as random bytes, base64.
fn random_base64(bytes: usize) -> String {
    use base64::Engine;
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::STANDARD.encode(raw)
}
