//! The one DynamoDB table: typed items (serde_dynamo), condition failures as values, and
//! transactions that say which item failed.
//!
//! Every client built by `Table` counts its requests (each attempt, retries included) into the
//! scope opened by `count_ddb_requests`, which the HTTP layer logs per request.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
pub use crate::keys::{Key, PK, SK};

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on items per `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// Attempts for a write cancelled by `TransactionConflict` (contention, not a failed condition).
pub const MAX_CONFLICT_ATTEMPTS: u32 = 5;
const BATCH_GET_CHUNK: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A single-item write's condition did not hold.
    #[error("condition check failed")]
    ConditionFailed,
    /// A transaction was cancelled; `reasons[i]` is about the transaction's `i`-th item.
    #[error("transaction cancelled: {reasons:?}")]
    TransactionCancelled { reasons: Vec<CancellationReason> },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl TableError {
    /// Indices of the transaction items whose condition failed (empty for other errors).
    ///
    /// Positions are for `shared`'s own transaction helpers and their tests; contexts use
    /// [`Transaction`], whose failures come back by name, so adding an item cannot shift a check.
    pub fn failed_items(&self) -> Vec<usize> {
        match self {
            Self::TransactionCancelled { reasons } => reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| **r == CancellationReason::ConditionalCheckFailed)
                .map(|(i, _)| i)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// True for a failed condition, single-item or in a transaction.
    pub fn is_condition_failure(&self) -> bool {
        match self {
            Self::ConditionFailed => true,
            Self::TransactionCancelled { reasons } => reasons.contains(&CancellationReason::ConditionalCheckFailed),
            Self::Unexpected(_) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancellationReason {
    None,
    ConditionalCheckFailed,
    TransactionConflict,
    Other(String),
}

impl CancellationReason {
    fn from_code(code: Option<&str>) -> Self {
        match code {
            None | Some("None") => Self::None,
            Some("ConditionalCheckFailed") => Self::ConditionalCheckFailed,
            Some("TransactionConflict") => Self::TransactionConflict,
            Some(other) => Self::Other(other.to_owned()),
        }
    }
}

/// Fallback only: contexts should map condition failures to their own codes
/// (`dates_unavailable`, `already_reviewed`, ...) before this runs.
impl From<TableError> for ApiError {
    fn from(err: TableError) -> Self {
        let retryable_or_condition = |r: &CancellationReason| {
            matches!(r, CancellationReason::ConditionalCheckFailed | CancellationReason::TransactionConflict)
        };
        match err {
            TableError::ConditionFailed => {
                ApiError::conflict("conflict", "The resource was changed by another request.")
            }
            TableError::TransactionCancelled { ref reasons } if reasons.iter().any(retryable_or_condition) => {
                ApiError::conflict("conflict", "The resource was changed by another request.")
            }
            TableError::TransactionCancelled { reasons } => {
                ApiError::Unexpected(anyhow::anyhow!("transaction cancelled: {reasons:?}"))
            }
            TableError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

/// A condition, update or key-condition expression with its placeholders. DynamoDB rejects
/// empty placeholder maps, so only non-empty ones are sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expr {
    pub expression: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn new(expression: impl Into<String>) -> Self {
        Self { expression: expression.into(), ..Self::default() }
    }

    /// `#placeholder` -> attribute name.
    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    /// `:placeholder` -> value.
    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    pub fn s(self, placeholder: &str, value: impl Into<String>) -> Self {
        self.value(placeholder, AttributeValue::S(value.into()))
    }

    pub fn n(self, placeholder: &str, value: i64) -> Self {
        self.value(placeholder, AttributeValue::N(value.to_string()))
    }

    /// Any serialisable value (a struct becomes a map, a `Vec<String>` a list).
    pub fn ser<T: Serialize>(self, placeholder: &str, value: &T) -> Result<Self, TableError> {
        let v = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(value)
            .with_context(|| format!("encode expression value {placeholder}"))?;
        Ok(self.value(placeholder, v))
    }

    /// `(self) AND (other)`, placeholders merged (use distinct ones).
    pub fn and(mut self, other: Expr) -> Self {
        self.expression = format!("({}) AND ({})", self.expression, other.expression);
        self.names.extend(other.names);
        self.values.extend(other.values);
        self
    }

    /// `attribute_not_exists(PK)`: the item must not exist yet.
    pub fn not_exists() -> Self {
        Self::new("attribute_not_exists(#pk)").name("#pk", PK)
    }

    /// `attribute_exists(PK)`: the item must exist.
    pub fn exists() -> Self {
        Self::new("attribute_exists(#pk)").name("#pk", PK)
    }
}

/// The names and values of an update and its condition (or a key condition and its filter),
/// sent as one map each. One placeholder meaning two things in them is a programming error
/// (the second would silently win: `#pk` as `PK` in a condition and `GSI3PK` in its update):
/// debug builds, the tests and the local stack among them, stop on it.
fn merged(exprs: &[Option<&Expr>]) -> (Option<HashMap<String, String>>, Option<Item>) {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut values: HashMap<String, AttributeValue> = HashMap::new();
    for e in exprs.iter().flatten() {
        for (k, v) in &e.names {
            let before = names.insert(k.clone(), v.clone());
            debug_assert!(before.as_ref().is_none_or(|b| b == v), "placeholder {k} names both {before:?} and {v}");
        }
        for (k, v) in &e.values {
            let before = values.insert(k.clone(), v.clone());
            debug_assert!(before.as_ref().is_none_or(|b| b == v), "placeholder {k} stands for two values");
        }
    }
    ((!names.is_empty()).then_some(names), (!values.is_empty()).then_some(values))
}

/// A `Query` on the table or one of its indexes.
#[derive(Debug, Clone)]
pub struct Query {
    index: Option<String>,
    key_condition: Expr,
    filter: Option<Expr>,
    limit: Option<i32>,
    start: Option<Item>,
    forward: bool,
    consistent: bool,
}

impl Query {
    pub fn new(key_condition: Expr) -> Self {
        Self { index: None, key_condition, filter: None, limit: None, start: None, forward: true, consistent: false }
    }

    /// All items whose partition attribute `attr` equals `value`.
    pub fn partition(attr: &str, value: impl Into<String>) -> Self {
        Self::new(Expr::new("#qpk = :qpk").name("#qpk", attr).s(":qpk", value))
    }

    /// Items in partition `pk` whose sort attribute starts with `prefix`.
    pub fn begins_with(pk_attr: &str, pk: impl Into<String>, sk_attr: &str, prefix: impl Into<String>) -> Self {
        Self::new(
            Expr::new("#qpk = :qpk AND begins_with(#qsk, :qsk)")
                .name("#qpk", pk_attr)
                .name("#qsk", sk_attr)
                .s(":qpk", pk)
                .s(":qsk", prefix),
        )
    }

    /// A schedule kept in a sparse index (`<index>PK` = `partition`, `<index>SK` =
    /// `<whole-second RFC 3339 instant>#<id>`): the entries due at `now`, oldest first. GSI3 holds
    /// the payouts' and the calendar imports' schedules this way.
    pub fn due(index: &str, partition: &str, now: jiff::Timestamp) -> Self {
        Self::new(
            Expr::new("#qpk = :qpk AND #qsk <= :qdue")
                .name("#qpk", &format!("{index}PK"))
                .name("#qsk", &format!("{index}SK"))
                .s(":qpk", partition)
                .s(":qdue", format!("{}#~", crate::night::instant(now))),
        )
        .index(index)
    }

    /// Items in partition `pk` with `from <= sort key <= to`.
    pub fn between(
        pk_attr: &str,
        pk: impl Into<String>,
        sk_attr: &str,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        Self::new(
            Expr::new("#qpk = :qpk AND #qsk BETWEEN :qfrom AND :qto")
                .name("#qpk", pk_attr)
                .name("#qsk", sk_attr)
                .s(":qpk", pk)
                .s(":qfrom", from)
                .s(":qto", to),
        )
    }

    pub fn index(mut self, name: impl Into<String>) -> Self {
        self.index = Some(name.into());
        self
    }

    /// Applied after the key condition and `limit`: a page may hold fewer than `limit` items.
    pub fn filter(mut self, filter: Expr) -> Self {
        self.filter = Some(filter);
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(i32::try_from(limit).unwrap_or(i32::MAX));
        self
    }

    /// Resume after this key (a previous page's `last_key`).
    pub fn start(mut self, key: Option<Item>) -> Self {
        self.start = key;
        self
    }

    /// Newest first, for sort keys that grow with time.
    pub fn descending(mut self) -> Self {
        self.forward = false;
        self
    }

    /// Strongly consistent (table only; GSIs are always eventually consistent).
    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub last_key: Option<Item>,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub client: Client,
    pub name: String,
}

impl Table {
    /// A client on `sdk_config` with request counting installed.
    pub fn new(sdk_config: &SdkConfig, name: impl Into<String>) -> Self {
        Self::from_conf(aws_sdk_dynamodb::config::Builder::from(sdk_config), name)
    }

    /// As `new`, from an explicit DynamoDB config (tests, custom retry settings).
    pub fn from_conf(conf: aws_sdk_dynamodb::config::Builder, name: impl Into<String>) -> Self {
        let conf = conf.interceptor(CountRequests).interceptor(crate::dependency::WatchDependency);
        Self { client: Client::from_conf(conf.build()), name: name.into() }
    }

    /// Strongly consistent read: an item just written is seen.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key.to_item()))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("GetItem {}/{}", key.pk, key.sk))?;
        out.item.map(from_item).transpose()
    }

    /// Strongly consistent read of only `attributes` (a ProjectionExpression): still one
    /// request, but a small item to send and parse, e.g. the version that answers an
    /// `If-None-Match` without the whole item (`crate::caching`).
    pub async fn get_projected<T: DeserializeOwned>(
        &self,
        key: &Key,
        attributes: &[&str],
    ) -> Result<Option<T>, TableError> {
        let placeholders: Vec<String> = (0..attributes.len()).map(|i| format!("#p{i}")).collect();
        let mut request = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key.to_item()))
            .consistent_read(true)
            .projection_expression(placeholders.join(", "));
        for (placeholder, attribute) in placeholders.iter().zip(attributes) {
            request = request.expression_attribute_names(placeholder, *attribute);
        }
        let out = request.send().await.with_context(|| format!("GetItem (projected) {}/{}", key.pk, key.sk))?;
        out.item.map(from_item).transpose()
    }

    /// Up to any number of keys (chunked by 100, unprocessed keys retried); the order of the
    /// result is not the order of `keys`, and missing items are simply absent.
    pub async fn batch_get<T: DeserializeOwned>(&self, keys: &[Key]) -> Result<Vec<T>, TableError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_CHUNK) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(Key::to_item).collect()))
                    .consistent_read(true)
                    .build()
                    .context("build BatchGetItem keys")?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                if attempt > 0 {
                    backoff(attempt).await;
                }
                attempt += 1;
                let mut out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .context("BatchGetItem")?;
                if let Some(items) = out.responses.as_mut().and_then(|r| r.remove(&self.name)) {
                    for item in items {
                        found.push(from_item(item)?);
                    }
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.name)).filter(|k| !k.keys.is_empty());
                if pending.is_some() && attempt >= MAX_CONFLICT_ATTEMPTS {
                    return Err(anyhow::anyhow!("BatchGetItem left keys unprocessed").into());
                }
            }
        }
        Ok(found)
    }

    /// Writes `item` unconditionally.
    pub async fn put<T: Serialize>(&self, item: &T) -> Result<(), TableError> {
        self.put_item(item, None).await
    }

    /// Writes `item` only if no item has its key (`attribute_not_exists(PK)`); otherwise
    /// `ConditionFailed`.
    pub async fn put_new<T: Serialize>(&self, item: &T) -> Result<(), TableError> {
        self.put_item(item, Some(&Expr::not_exists())).await
    }

    /// Writes `item` if `condition` holds; otherwise `ConditionFailed`.
    pub async fn put_if<T: Serialize>(&self, item: &T, condition: &Expr) -> Result<(), TableError> {
        self.put_item(item, Some(condition)).await
    }

    async fn put_item<T: Serialize>(&self, item: &T, condition: Option<&Expr>) -> Result<(), TableError> {
        let item = to_item(item)?;
        let (names, values) = merged(&[condition]);
        let request = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .set_condition_expression(condition.map(|c| c.expression.clone()))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values);
        write_with_retry(|| "PutItem".to_owned(), || request.clone().send()).await
    }

    /// `UpdateItem` with an update expression and an optional condition.
    pub async fn update(&self, key: &Key, update: &Expr, condition: Option<&Expr>) -> Result<(), TableError> {
        let (names, values) = merged(&[Some(update), condition]);
        let request = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key.to_item()))
            .update_expression(&update.expression)
            .set_condition_expression(condition.map(|c| c.expression.clone()))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values);
        write_with_retry(|| format!("UpdateItem {}/{}", key.pk, key.sk), || request.clone().send()).await
    }

    /// `DeleteItem` with an optional condition (deleting a missing item is not an error).
    pub async fn delete(&self, key: &Key, condition: Option<&Expr>) -> Result<(), TableError> {
        let (names, values) = merged(&[condition]);
        let request = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key.to_item()))
            .set_condition_expression(condition.map(|c| c.expression.clone()))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values);
        write_with_retry(|| format!("DeleteItem {}/{}", key.pk, key.sk), || request.clone().send()).await
    }

    /// One page of a query, as typed items plus the key to resume from.
    pub async fn query<T: DeserializeOwned>(&self, query: Query) -> Result<Page<T>, TableError> {
        let (names, values) = merged(&[Some(&query.key_condition), query.filter.as_ref()]);
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(query.index)
            .key_condition_expression(query.key_condition.expression)
            .set_filter_expression(query.filter.map(|f| f.expression))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_limit(query.limit)
            .set_exclusive_start_key(query.start)
            .scan_index_forward(query.forward)
            .set_consistent_read(query.consistent.then_some(true))
            .send()
            .await
            .context("Query")?;
        let items = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<Vec<T>, _>>()?;
        let last_key = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok(Page { items, last_key })
    }

    /// `TransactWriteItems`, retried with jittered backoff while it is cancelled only by
    /// `TransactionConflict` (contention: real DynamoDB does this, and so does the strict local
    /// stack). A failed condition is returned at once with the reasons in item order.
    ///
    /// The unnamed layer under [`Transaction`] (which commits through this), kept for `shared`'s
    /// own helpers (`sqs::apply_once`) and tests; contexts write [`Transaction`]s.
    pub async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TableError> {
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(anyhow::anyhow!(
                "transaction of {} items exceeds DynamoDB's limit of {MAX_TRANSACTION_ITEMS}",
                items.len()
            )
            .into());
        }
        if items.is_empty() {
            return Ok(());
        }
        let request = self.client.transact_write_items().set_transact_items(Some(items));
        let request = &request;
        with_conflict_retry(|| async move {
            let err = match request.clone().send().await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => {
                    Err(TableError::TransactionCancelled {
                        reasons: c
                            .cancellation_reasons()
                            .iter()
                            .map(|r| CancellationReason::from_code(r.code()))
                            .collect(),
                    })
                }
                _ => Err(anyhow::Error::new(err).context("TransactWriteItems").into()),
            }
        })
        .await
    }

    /// A `Put` for a transaction, with an optional condition.
    pub fn tx_put<T: Serialize>(&self, item: &T, condition: Option<&Expr>) -> Result<TransactWriteItem, TableError> {
        let (names, values) = merged(&[condition]);
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(to_item(item)?))
            .set_condition_expression(condition.map(|c| c.expression.clone()))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .context("build Put")?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A `Put` that fails the transaction if the item already exists.
    pub fn tx_put_new<T: Serialize>(&self, item: &T) -> Result<TransactWriteItem, TableError> {
        self.tx_put(item, Some(&Expr::not_exists()))
    }

    /// A `ConditionCheck` on another item (e.g. the listing is active and at this version).
    pub fn tx_check(&self, key: &Key, condition: &Expr) -> Result<TransactWriteItem, TableError> {
        let (names, values) = merged(&[Some(condition)]);
        let check = ConditionCheck::builder()
            .table_name(&self.name)
            .set_key(Some(key.to_item()))
            .condition_expression(&condition.expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .context("build ConditionCheck")?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    pub fn tx_update(
        &self,
        key: &Key,
        update: &Expr,
        condition: Option<&Expr>,
    ) -> Result<TransactWriteItem, TableError> {
        let (names, values) = merged(&[Some(update), condition]);
        let upd = Update::builder()
            .table_name(&self.name)
            .set_key(Some(key.to_item()))
            .update_expression(&update.expression)
            .set_condition_expression(condition.map(|c| c.expression.clone()))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .context("build Update")?;
        Ok(TransactWriteItem::builder().update(upd).build())
    }

    pub fn tx_delete(&self, key: &Key, condition: Option<&Expr>) -> Result<TransactWriteItem, TableError> {
        let (names, values) = merged(&[condition]);
        let del = Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key.to_item()))
            .set_condition_expression(condition.map(|c| c.expression.clone()))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .context("build Delete")?;
        Ok(TransactWriteItem::builder().delete(del).build())
    }
}

/// A `TransactWriteItems` whose items have names (`N`, a context's enum such as
/// `enum CreateItem { Idempotency, Listing, Booking, Night(Date) }`), so a cancellation says
/// which named items' conditions failed, and adding an item cannot shift another's check.
#[derive(Debug)]
pub struct Transaction<'t, N> {
    table: &'t Table,
    names: Vec<N>,
    items: Vec<TransactWriteItem>,
}

/// Why a named transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum TransactError<N: Debug> {
    /// The conditions of these items failed (in item order, never empty); nothing was written.
    #[error("transaction conditions failed on {0:?}")]
    Conditions(Vec<N>),
    /// Anything else: endless contention, an invalid request, DynamoDB unreachable.
    #[error(transparent)]
    Table(#[from] TableError),
}

/// For callers that do not tell the items apart: a failed condition is `ConditionFailed`.
impl<N: Debug> From<TransactError<N>> for TableError {
    fn from(err: TransactError<N>) -> Self {
        match err {
            TransactError::Conditions(_) => TableError::ConditionFailed,
            TransactError::Table(e) => e,
        }
    }
}

/// Fallback only, as for `TableError`: a failed condition is a 409 `conflict`.
impl<N: Debug> From<TransactError<N>> for ApiError {
    fn from(err: TransactError<N>) -> Self {
        TableError::from(err).into()
    }
}

impl<'t, N: Copy + Eq + Debug> Transaction<'t, N> {
    pub fn new(table: &'t Table) -> Self {
        Self { table, names: Vec::new(), items: Vec::new() }
    }

    /// A `Put`, with an optional condition.
    pub fn put<T: Serialize>(&mut self, name: N, item: &T, condition: Option<&Expr>) -> Result<(), TableError> {
        let item = self.table.tx_put(item, condition)?;
        self.push(name, item);
        Ok(())
    }

    /// A `Put` whose condition is that no item has its key yet.
    pub fn put_new<T: Serialize>(&mut self, name: N, item: &T) -> Result<(), TableError> {
        self.put(name, item, Some(&Expr::not_exists()))
    }

    /// A `ConditionCheck` on an item the transaction does not write.
    pub fn check(&mut self, name: N, key: &Key, condition: &Expr) -> Result<(), TableError> {
        let item = self.table.tx_check(key, condition)?;
        self.push(name, item);
        Ok(())
    }

    pub fn update(&mut self, name: N, key: &Key, update: &Expr, condition: Option<&Expr>) -> Result<(), TableError> {
        let item = self.table.tx_update(key, update, condition)?;
        self.push(name, item);
        Ok(())
    }

    pub fn delete(&mut self, name: N, key: &Key, condition: Option<&Expr>) -> Result<(), TableError> {
        let item = self.table.tx_delete(key, condition)?;
        self.push(name, item);
        Ok(())
    }

    /// An item built elsewhere (`events::outbox_put`, `Idempotent::tx_put_completed`,
    /// `sqs::receipt_put`), under its name.
    pub fn push(&mut self, name: N, item: TransactWriteItem) {
        self.names.push(name);
        self.items.push(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Commits as [`Table::transact`] does (conflicts retried, more than
    /// [`MAX_TRANSACTION_ITEMS`] refused, an empty transaction a no-op), a failed condition
    /// answered with the names of the items whose conditions failed.
    pub async fn commit(self) -> Result<(), TransactError<N>> {
        let Self { table, names, items } = self;
        match table.transact(items).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCancelled { reasons }) => Err(cancelled(&names, reasons)),
            Err(e) => Err(TransactError::Table(e)),
        }
    }
}

/// `reasons[i]` is about the item named `names[i]`. A cancellation with failed conditions that
/// cannot be put to names (a reason list of another length) stays a `TableError`.
fn cancelled<N: Copy + Debug>(names: &[N], reasons: Vec<CancellationReason>) -> TransactError<N> {
    let failed: Vec<N> = names
        .iter()
        .zip(&reasons)
        .filter(|(_, r)| **r == CancellationReason::ConditionalCheckFailed)
        .map(|(n, _)| *n)
        .collect();
    if failed.is_empty() || reasons.len() != names.len() {
        TransactError::Table(TableError::TransactionCancelled { reasons })
    } else {
        TransactError::Conditions(failed)
    }
}

/// Serialises a typed item into a DynamoDB item.
pub fn to_item<T: Serialize>(item: &T) -> Result<Item, TableError> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::to_item(item).context("encode item")?)
}

/// Deserialises a DynamoDB item; the error names the item's key, never its contents.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, TableError> {
    let key = |a: &str| match item.get(a) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::from("?"),
    };
    let name = format!("{}/{}", key(PK), key(SK));
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item).with_context(|| format!("decode item {name}"))?)
}

/// Whether a failed write is worth another attempt.
enum Attempt {
    Done(TableError),
    Conflict(TableError),
}

/// Sends a single-item write (`PutItem`, `UpdateItem`, `DeleteItem`) with the conflict retry,
/// its failure classified: a failed condition is `ConditionFailed`, contention is retried, the
/// rest is `Unexpected` with `what` (the operation and key) as context.
async fn write_with_retry<O, E, Fut>(what: impl Fn() -> String, send: impl Fn() -> Fut) -> Result<(), TableError>
where
    Fut: Future<Output = Result<O, E>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    with_conflict_retry(|| async {
        match send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.code().map(str::to_owned);
                Err(classify_single(code.as_deref(), anyhow::Error::new(e).context(what())))
            }
        }
    })
    .await
}

/// `code` is the service error's code (`None` for transport failures): the same names the
/// SDK's `is_conditional_check_failed_exception` / `is_transaction_conflict_exception` test.
fn classify_single(code: Option<&str>, err: anyhow::Error) -> TableError {
    match code {
        Some("ConditionalCheckFailedException") => TableError::ConditionFailed,
        Some("TransactionConflictException") => {
            TableError::TransactionCancelled { reasons: vec![CancellationReason::TransactionConflict] }
        }
        _ => TableError::Unexpected(err),
    }
}

fn classify(err: TableError) -> Attempt {
    match &err {
        TableError::TransactionCancelled { reasons }
            if reasons.contains(&CancellationReason::TransactionConflict)
                && !reasons.contains(&CancellationReason::ConditionalCheckFailed) =>
        {
            Attempt::Conflict(err)
        }
        _ => Attempt::Done(err),
    }
}

async fn with_conflict_retry<F, Fut>(mut op: F) -> Result<(), TableError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), TableError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await.map_err(classify) {
            Ok(()) => return Ok(()),
            Err(Attempt::Done(e)) => return Err(e),
            Err(Attempt::Conflict(e)) if attempt >= MAX_CONFLICT_ATTEMPTS => return Err(e),
            Err(Attempt::Conflict(_)) => backoff(attempt).await,
        }
    }
}

/// Full jitter: uniform in [0, min(cap, base * 2^attempt)], so racing writers spread out.
async fn backoff(attempt: u32) {
    let ceiling_ms = 20u64.saturating_mul(1 << attempt.min(5)).min(500);
    let ms = rand::rng().random_range(0..=ceiling_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

tokio::task_local! {
    static DDB_REQUESTS: Arc<AtomicU32>;
}

/// Runs `f` and returns how many DynamoDB requests (attempts, retries included) it sent
/// through clients made by `Table`. Requests from tasks spawned inside `f` are not counted.
pub async fn count_ddb_requests<F: Future>(f: F) -> (F::Output, u32) {
    let counter = Arc::new(AtomicU32::new(0));
    let out = DDB_REQUESTS.scope(counter.clone(), f).await;
    (out, counter.load(Ordering::Relaxed))
}

#[derive(Debug)]
struct CountRequests;

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "RoostCountDdbRequests"
    }

    // Runs once per attempt, just before the request goes on the wire.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Outside a counting scope there is nothing to count into.
        let _ = DDB_REQUESTS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_due_up_to_the_whole_second_now_whatever_the_id() {
        let q = Query::due("GSI3", "PAYOUTS_DUE", "2027-01-11T15:00:00.7Z".parse().unwrap());
        assert_eq!(q.index.as_deref(), Some("GSI3"));
        assert_eq!(q.key_condition.names["#qsk"], "GSI3SK");
        let due = &q.key_condition.values[":qdue"];
        assert_eq!(due.as_s().unwrap(), "2027-01-11T15:00:00Z#~");
        // `~` sorts after every id character: an entry due this very second is included.
        assert!("2027-01-11T15:00:00Z#bkg_01zz" < due.as_s().unwrap().as_str());
    }

    #[test]
    #[should_panic(expected = "placeholder #pk names both")]
    fn one_placeholder_for_two_attributes_is_caught() {
        let update = Expr::new("SET #pk = :v").name("#pk", "GSI3PK").s(":v", "x");
        merged(&[Some(&update), Some(&Expr::exists())]);
    }

    #[test]
    fn the_same_placeholder_for_the_same_thing_merges() {
        let a = Expr::new("a").name("#s", "status").s(":v", "x");
        let b = Expr::new("b").name("#s", "status").s(":v", "x");
        let (names, values) = merged(&[Some(&a), Some(&b)]);
        assert_eq!(names.map(|n| n.len()), Some(1));
        assert_eq!(values.map(|v| v.len()), Some(1));
    }
    use crate::test_support::{AwsStub, dynamodb_client};
    use serde::Deserialize;
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Profile {
        #[serde(rename = "PK")]
        pk: String,
        #[serde(rename = "SK")]
        sk: String,
        name: String,
        nights: u32,
    }

    fn profile() -> Profile {
        Profile { pk: "USER#u-1".to_owned(), sk: "PROFILE".to_owned(), name: "Ana".to_owned(), nights: 3 }
    }

    const PROFILE_ITEM: &str =
        r#"{"Item":{"PK":{"S":"USER#u-1"},"SK":{"S":"PROFILE"},"name":{"S":"Ana"},"nights":{"N":"3"}}}"#;

    fn err(kind: &str) -> String {
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"{kind}"}}"#)
    }

    fn cancelled_body(codes: &[&str]) -> String {
        let reasons: Vec<serde_json::Value> = codes.iter().map(|c| serde_json::json!({"Code": c})).collect();
        serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": reasons
        })
        .to_string()
    }

    async fn table_with(handler: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static) -> (Table, AwsStub) {
        let stub = AwsStub::start(handler).await;
        (Table::from_conf(dynamodb_client(&stub.url()), "roost"), stub)
    }

    #[tokio::test]
    async fn get_decodes_typed_items_and_counts_the_request() {
        let (table, _stub) = table_with(|target, body| {
            assert_eq!(target, "DynamoDB_20120810.GetItem");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(req["TableName"], "roost");
            assert_eq!(req["ConsistentRead"], true);
            match req["Key"]["PK"]["S"].as_str().unwrap() {
                "USER#u-1" => (200, PROFILE_ITEM.to_owned()),
                _ => (200, "{}".to_owned()),
            }
        })
        .await;
        let (got, n) = count_ddb_requests(async {
            let found: Option<Profile> = table.get(&crate::keys::user_profile("u-1")).await.unwrap();
            let missing: Option<Profile> = table.get(&crate::keys::user_profile("u-2")).await.unwrap();
            (found, missing)
        })
        .await;
        assert_eq!(got.0, Some(profile()));
        assert_eq!(got.1, None);
        assert_eq!(n, 2);
        // Outside a scope the interceptor is a no-op.
        assert!(table.get::<Profile>(&crate::keys::user_profile("u-1")).await.is_ok());
    }

    #[tokio::test]
    async fn a_projected_get_names_only_its_attributes() {
        let (table, stub) = table_with(|target, body| {
            assert_eq!(target, "DynamoDB_20120810.GetItem");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(req["ConsistentRead"], true);
            assert_eq!(req["ProjectionExpression"], "#p0, #p1");
            assert_eq!(req["ExpressionAttributeNames"], serde_json::json!({"#p0": "name", "#p1": "nights"}));
            (200, r#"{"Item":{"name":{"S":"Ana"},"nights":{"N":"3"}}}"#.to_owned())
        })
        .await;
        #[derive(Debug, Deserialize, PartialEq)]
        struct Stamp {
            name: String,
            nights: u32,
        }
        let got: Option<Stamp> =
            table.get_projected(&crate::keys::user_profile("u-1"), &["name", "nights"]).await.unwrap();
        assert_eq!(got, Some(Stamp { name: "Ana".into(), nights: 3 }));
        assert_eq!(stub.hits(), 1);
    }

    #[tokio::test]
    async fn retries_are_counted_per_attempt() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let (table, stub) = table_with(move |_, _| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                (500, err("InternalServerError"))
            } else {
                (200, PROFILE_ITEM.to_owned())
            }
        })
        .await;
        let (got, n) = count_ddb_requests(table.get::<Profile>(&Key::new("USER#u-1", "PROFILE"))).await;
        assert_eq!(got.unwrap(), Some(profile()));
        assert_eq!(stub.hits(), 2);
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn undecodable_items_are_unexpected_errors_naming_the_key() {
        let (table, _stub) = table_with(|_, _| {
            (200, r#"{"Item":{"PK":{"S":"USER#u-1"},"SK":{"S":"PROFILE"},"name":{"N":"1"}}}"#.to_owned())
        })
        .await;
        let e = table.get::<Profile>(&crate::keys::user_profile("u-1")).await.unwrap_err();
        assert!(matches!(e, TableError::Unexpected(_)));
        assert!(format!("{e:#}").contains("USER#u-1/PROFILE"), "{e:#}");
    }

    #[tokio::test]
    async fn put_new_maps_the_condition_failure() {
        let (table, _stub) = table_with(|target, body| {
            assert_eq!(target, "DynamoDB_20120810.PutItem");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(req["ConditionExpression"], "attribute_not_exists(#pk)");
            assert_eq!(req["ExpressionAttributeNames"]["#pk"], "PK");
            assert!(req.get("ExpressionAttributeValues").is_none());
            assert_eq!(req["Item"]["nights"]["N"], "3");
            if req["Item"]["name"]["S"] == "Ana" {
                (400, err("ConditionalCheckFailedException"))
            } else {
                (200, "{}".to_owned())
            }
        })
        .await;
        let e = table.put_new(&profile()).await.unwrap_err();
        assert!(matches!(e, TableError::ConditionFailed));
        assert!(e.is_condition_failure());
        let api: ApiError = e.into();
        assert_eq!(api.status().as_u16(), 409);
        assert_eq!(api.code(), "conflict");
        let mut other = profile();
        other.name = "Bo".to_owned();
        table.put_new(&other).await.unwrap();
    }

    #[tokio::test]
    async fn update_and_delete_send_merged_placeholders() {
        let (table, _stub) = table_with(|target, body| {
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            match target {
                "DynamoDB_20120810.UpdateItem" => {
                    assert_eq!(req["UpdateExpression"], "SET #name = :name");
                    assert_eq!(req["ConditionExpression"], "(attribute_exists(#pk)) AND (#v = :v)");
                    assert_eq!(req["ExpressionAttributeNames"]["#name"], "name");
                    assert_eq!(req["ExpressionAttributeNames"]["#v"], "version");
                    assert_eq!(req["ExpressionAttributeValues"][":v"]["N"], "7");
                    (400, err("ConditionalCheckFailedException"))
                }
                "DynamoDB_20120810.DeleteItem" => {
                    assert!(req.get("ConditionExpression").is_none());
                    (200, "{}".to_owned())
                }
                other => panic!("{other}"),
            }
        })
        .await;
        let key = crate::keys::user_profile("u-1");
        let update = Expr::new("SET #name = :name").name("#name", "name").s(":name", "Bo");
        let cond = Expr::exists().and(Expr::new("#v = :v").name("#v", "version").n(":v", 7));
        let e = table.update(&key, &update, Some(&cond)).await.unwrap_err();
        assert!(matches!(e, TableError::ConditionFailed));
        table.delete(&key, None).await.unwrap();
    }

    #[tokio::test]
    async fn query_returns_typed_items_and_last_key() {
        let (table, _stub) = table_with(|target, body| {
            assert_eq!(target, "DynamoDB_20120810.Query");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(req["IndexName"], "GSI1");
            assert_eq!(req["KeyConditionExpression"], "#qpk = :qpk AND begins_with(#qsk, :qsk)");
            assert_eq!(req["ExpressionAttributeNames"]["#qpk"], "GSI1PK");
            assert_eq!(req["ExpressionAttributeValues"][":qsk"]["S"], "PROFILE");
            assert_eq!(req["FilterExpression"], "#n >= :n");
            assert_eq!(req["ExpressionAttributeValues"][":n"]["N"], "2");
            assert_eq!(req["Limit"], 10);
            assert_eq!(req["ScanIndexForward"], false);
            assert_eq!(req["ExclusiveStartKey"]["PK"]["S"], "USER#u-0");
            assert!(req.get("ConsistentRead").is_none());
            (
                200,
                r#"{"Items":[{"PK":{"S":"USER#u-1"},"SK":{"S":"PROFILE"},"name":{"S":"Ana"},"nights":{"N":"3"}}],
                    "Count":1,"ScannedCount":2,
                    "LastEvaluatedKey":{"PK":{"S":"USER#u-1"},"SK":{"S":"PROFILE"}}}"#
                    .to_owned(),
            )
        })
        .await;
        let start = Key::new("USER#u-0", "PROFILE").to_item();
        let page: Page<Profile> = table
            .query(
                Query::begins_with("GSI1PK", "CITY#lisbon", "GSI1SK", "PROFILE")
                    .index("GSI1")
                    .filter(Expr::new("#n >= :n").name("#n", "nights").n(":n", 2))
                    .limit(10)
                    .descending()
                    .start(Some(start)),
            )
            .await
            .unwrap();
        assert_eq!(page.items, vec![profile()]);
        assert_eq!(page.last_key, Some(Key::new("USER#u-1", "PROFILE").to_item()));
    }

    #[tokio::test]
    async fn empty_last_key_means_last_page() {
        let (table, _stub) =
            table_with(|_, _| (200, r#"{"Items":[],"Count":0,"LastEvaluatedKey":{}}"#.to_owned())).await;
        let page: Page<Profile> = table.query(Query::partition("PK", "X").consistent()).await.unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.last_key, None);
    }

    #[tokio::test]
    async fn batch_get_retries_unprocessed_keys() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let (table, _stub) = table_with(move |target, _| {
            assert_eq!(target, "DynamoDB_20120810.BatchGetItem");
            let item = r#"{"PK":{"S":"USER#u-1"},"SK":{"S":"PROFILE"},"name":{"S":"Ana"},"nights":{"N":"3"}}"#;
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                (200, format!(r#"{{"Responses":{{"roost":[{item}]}},"UnprocessedKeys":{{"roost":{{"Keys":[{{"PK":{{"S":"USER#u-1"}},"SK":{{"S":"PROFILE"}}}}]}}}}}}"#))
            } else {
                (200, format!(r#"{{"Responses":{{"roost":[{item}]}},"UnprocessedKeys":{{}}}}"#))
            }
        })
        .await;
        let keys = [crate::keys::user_profile("u-1"), crate::keys::user_profile("u-2")];
        let (got, n) = count_ddb_requests(table.batch_get::<Profile>(&keys)).await;
        assert_eq!(got.unwrap().len(), 2);
        assert_eq!(n, 2);
    }

    fn two_items(table: &Table) -> Vec<TransactWriteItem> {
        vec![
            table.tx_put_new(&profile()).unwrap(),
            table
                .tx_check(
                    &Key::new("LISTING#1", "META"),
                    &Expr::new("#s = :active").name("#s", "status").s(":active", "active"),
                )
                .unwrap(),
        ]
    }

    #[tokio::test]
    async fn transaction_reports_which_item_failed() {
        let (table, stub) = table_with(|target, body| {
            assert_eq!(target, "DynamoDB_20120810.TransactWriteItems");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            let items = req["TransactItems"].as_array().unwrap();
            assert_eq!(items[0]["Put"]["TableName"], "roost");
            assert_eq!(items[1]["ConditionCheck"]["Key"]["PK"]["S"], "LISTING#1");
            (400, cancelled_body(&["None", "ConditionalCheckFailed"]))
        })
        .await;
        let items = two_items(&table);
        let e = table.transact(items).await.unwrap_err();
        match &e {
            TableError::TransactionCancelled { reasons } => {
                assert_eq!(reasons, &vec![CancellationReason::None, CancellationReason::ConditionalCheckFailed])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.failed_items(), vec![1]);
        assert!(e.is_condition_failure());
        assert_eq!(stub.hits(), 1, "a failed condition is not retried");
        assert_eq!(ApiError::from(e).status().as_u16(), 409);
    }

    #[tokio::test]
    async fn transaction_conflicts_are_retried() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let (table, stub) = table_with(move |_, _| {
            if c.fetch_add(1, Ordering::SeqCst) < 2 {
                (400, cancelled_body(&["TransactionConflict", "None"]))
            } else {
                (200, "{}".to_owned())
            }
        })
        .await;
        let items = two_items(&table);
        let (res, n) = count_ddb_requests(table.transact(items)).await;
        res.unwrap();
        assert_eq!(stub.hits(), 3);
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn endless_conflicts_give_up() {
        let (table, stub) = table_with(|_, _| (400, cancelled_body(&["None", "TransactionConflict"]))).await;
        let e = table.transact(two_items(&table)).await.unwrap_err();
        assert_eq!(stub.hits(), MAX_CONFLICT_ATTEMPTS as usize);
        assert!(!e.is_condition_failure());
        assert_eq!(e.failed_items(), Vec::<usize>::new());
        assert_eq!(ApiError::from(e).code(), "conflict");
    }

    #[tokio::test]
    async fn other_failures_are_unexpected() {
        let (table, _stub) = table_with(|_, _| (400, cancelled_body(&["ValidationError"]))).await;
        let e = table.transact(two_items(&table)).await.unwrap_err();
        assert!(matches!(&e, TableError::TransactionCancelled { reasons }
            if reasons == &vec![CancellationReason::Other("ValidationError".to_owned())]));
        assert_eq!(ApiError::from(e).status().as_u16(), 500);

        let (table, _stub) = table_with(|_, _| (400, err("ResourceNotFoundException"))).await;
        let e = table.transact(two_items(&table)).await.unwrap_err();
        assert!(matches!(e, TableError::Unexpected(_)));

        let too_many = (0..101).map(|_| table.tx_delete(&Key::new("a", "b"), None).unwrap()).collect();
        assert!(matches!(table.transact(too_many).await, Err(TableError::Unexpected(_))));
        table.transact(Vec::new()).await.unwrap();
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Named {
        Profile,
        Listing,
        Night(u8),
    }

    fn named(table: &Table) -> Transaction<'_, Named> {
        let mut tx = Transaction::new(table);
        tx.put_new(Named::Profile, &profile()).unwrap();
        tx.check(Named::Listing, &Key::new("LISTING#1", "META"), &Expr::exists()).unwrap();
        for n in 1..=2 {
            tx.delete(Named::Night(n), &Key::new("LISTING#1", format!("NIGHT#{n}")), Some(&Expr::exists())).unwrap();
        }
        tx.update(Named::Night(3), &Key::new("LISTING#1", "NIGHT#3"), &Expr::new("SET a = :a").n(":a", 1), None)
            .unwrap();
        tx.put(Named::Night(4), &profile(), None).unwrap();
        tx
    }

    #[test]
    fn cancellation_reasons_map_to_item_names() {
        use CancellationReason::{ConditionalCheckFailed as Failed, None as Pass, TransactionConflict};
        let names = [Named::Profile, Named::Listing, Named::Night(1), Named::Night(2)];
        let failed = |reasons: Vec<CancellationReason>| match cancelled(&names, reasons) {
            TransactError::Conditions(n) => Some(n),
            TransactError::Table(_) => None,
        };
        assert_eq!(failed(vec![Pass, Failed, Pass, Failed]), Some(vec![Named::Listing, Named::Night(2)]));
        assert_eq!(failed(vec![Failed, Pass, Pass, Pass]), Some(vec![Named::Profile]));
        // No failed condition, or reasons that cannot be put to names: not a `Conditions`.
        assert_eq!(failed(vec![Pass, TransactionConflict, Pass, Pass]), None);
        assert_eq!(failed(vec![Failed, Pass]), None);
        assert!(matches!(
            cancelled(&names, vec![Pass, Pass, Pass, Pass]),
            TransactError::Table(TableError::TransactionCancelled { reasons }) if reasons.len() == 4
        ));
    }

    #[tokio::test]
    async fn named_transaction_reports_failed_names_in_item_order() {
        let (table, stub) = table_with(|target, body| {
            assert_eq!(target, "DynamoDB_20120810.TransactWriteItems");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            let items = req["TransactItems"].as_array().unwrap();
            assert_eq!(items.len(), 6);
            assert!(items[1]["ConditionCheck"].is_object() && items[2]["Delete"].is_object());
            assert!(items[4]["Update"].is_object() && items[5]["Put"].is_object());
            (400, cancelled_body(&["None", "ConditionalCheckFailed", "None", "ConditionalCheckFailed", "None", "None"]))
        })
        .await;
        let tx = named(&table);
        assert_eq!(tx.len(), 6);
        let e = tx.commit().await.unwrap_err();
        assert!(matches!(&e, TransactError::Conditions(n) if n == &vec![Named::Listing, Named::Night(2)]), "{e:?}");
        assert_eq!(stub.hits(), 1, "a failed condition is not retried");
        let table_error = TableError::from(e);
        assert!(table_error.is_condition_failure());
        assert_eq!(ApiError::from(TransactError::<Named>::Conditions(vec![Named::Listing])).code(), "conflict");
    }

    #[tokio::test]
    async fn named_transaction_commits_retries_and_passes_other_errors() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let (table, stub) = table_with(move |_, _| match c.fetch_add(1, Ordering::SeqCst) {
            0 => (400, cancelled_body(&["TransactionConflict", "None", "None", "None", "None", "None"])),
            1 => (200, "{}".to_owned()),
            _ => (400, err("ResourceNotFoundException")),
        })
        .await;
        named(&table).commit().await.unwrap();
        assert_eq!(stub.hits(), 2);
        let e = named(&table).commit().await.unwrap_err();
        assert!(matches!(e, TransactError::Table(TableError::Unexpected(_))));
        assert_eq!(ApiError::from(e).status().as_u16(), 500);
    }

    #[tokio::test]
    async fn named_transaction_limits_empty_and_raw_items() {
        let (table, stub) = table_with(|_, _| (200, "{}".to_owned())).await;
        Transaction::<Named>::new(&table).commit().await.unwrap();
        assert!(Transaction::<Named>::new(&table).is_empty());
        assert_eq!(stub.hits(), 0, "an empty transaction sends nothing");
        let mut too_many = Transaction::new(&table);
        for n in 0..=100u8 {
            too_many.push(Named::Night(n), table.tx_delete(&Key::new("a", n.to_string()), None).unwrap());
        }
        assert_eq!(too_many.len(), MAX_TRANSACTION_ITEMS + 1);
        assert!(matches!(too_many.commit().await, Err(TransactError::Table(TableError::Unexpected(_)))));
        assert_eq!(stub.hits(), 0, "an oversized transaction is refused before sending");
    }

    #[tokio::test]
    async fn counting_scopes_are_per_task() {
        let (table, _stub) = table_with(|_, _| (200, PROFILE_ITEM.to_owned())).await;
        let key = crate::keys::user_profile("u-1");
        let one = count_ddb_requests(async {
            table.get::<Profile>(&key).await.unwrap();
        });
        let three = count_ddb_requests(async {
            for _ in 0..3 {
                table.get::<Profile>(&key).await.unwrap();
            }
        });
        let ((_, a), (_, b)) = tokio::join!(one, three);
        assert_eq!((a, b), (1, 3));
        let ((), zero) = count_ddb_requests(async {}).await;
        assert_eq!(zero, 0);
    }

    #[test]
    fn expr_helpers() {
        let e = Expr::new("a = :a").s(":a", "x").n(":n", -3);
        assert_eq!(e.values[":n"], AttributeValue::N("-3".to_owned()));
        let e = e.ser(":l", &vec!["2025-01-01", "2025-01-02"]).unwrap();
        assert!(matches!(&e.values[":l"], AttributeValue::L(l) if l.len() == 2));
        let (names, values) = merged(&[None]);
        assert!(names.is_none() && values.is_none());
        assert_eq!(
            Query::between("PK", "LISTING#1", "SK", "NIGHT#2025-01-01", "NIGHT#2025-01-31").key_condition.expression,
            "#qpk = :qpk AND #qsk BETWEEN :qfrom AND :qto"
        );
    }

    #[test]
    fn table_new_builds_from_sdk_config() {
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let table = Table::new(&conf, "roost");
        assert_eq!(table.name, "roost");
    }
}
