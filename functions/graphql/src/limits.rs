//! What stops an abusive query before it reads anything: the query's size, its depth, its
//! complexity (a connection costs its page size times what each node asks for), its aliases (a
//! cheap query can ask for one expensive field many times under different names), how many
//! queries one request may batch, and introspection (per stage).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// The limits of one stage (`GRAPHQL_*` variables in the template; these defaults otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Nesting of selections: a listing page is 5 deep (listing > reviews > edges > node > author).
    pub depth: usize,
    /// Fields counted with connections multiplied by their page size.
    pub complexity: usize,
    /// Aliased fields in one document.
    pub aliases: usize,
    /// Queries in one batched request (a JSON array of requests).
    pub batch: usize,
    /// Characters of one query text.
    pub query_chars: usize,
    /// `__schema` and `__type` answer: on in dev, off in prod (samconfig.toml).
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self { depth: 8, complexity: 1_000, aliases: 15, batch: 5, query_chars: 8 * 1024, introspection: true }
    }
}

impl Limits {
    /// From the environment: `GRAPHQL_MAX_DEPTH`, `GRAPHQL_MAX_COMPLEXITY`, `GRAPHQL_MAX_ALIASES`,
    /// `GRAPHQL_MAX_BATCH`, `GRAPHQL_MAX_QUERY_CHARS`, `GRAPHQL_INTROSPECTION` (`true`/`false`).
    pub fn from_env() -> Result<Self, shared::config::ConfigError> {
        let d = Self::default();
        let number = |name: &str, default: usize| -> Result<usize, shared::config::ConfigError> {
            match shared::config::optional(name) {
                Some(v) => v.parse().map_err(|_| shared::config::ConfigError::Invalid {
                    name: name.to_owned(),
                    reason: format!("{v:?} is not a number"),
                }),
                None => Ok(default),
            }
        };
        Ok(Self {
            depth: number("GRAPHQL_MAX_DEPTH", d.depth)?,
            complexity: number("GRAPHQL_MAX_COMPLEXITY", d.complexity)?,
            aliases: number("GRAPHQL_MAX_ALIASES", d.aliases)?,
            batch: number("GRAPHQL_MAX_BATCH", d.batch)?,
            query_chars: number("GRAPHQL_MAX_QUERY_CHARS", d.query_chars)?,
            introspection: shared::config::optional("GRAPHQL_INTROSPECTION").is_none_or(|v| v != "false"),
        })
    }
}

/// Aliased fields anywhere in the document (operations and fragments, each counted once).
pub fn aliases(doc: &ExecutableDocument) -> usize {
    let operations: usize = doc.operations.iter().map(|(_, op)| in_selection(&op.node.selection_set.node)).sum();
    let fragments: usize = doc.fragments.values().map(|f| in_selection(&f.node.selection_set.node)).sum();
    operations + fragments
}

fn in_selection(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + in_selection(&f.node.selection_set.node),
            Selection::InlineFragment(f) => in_selection(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Refuses a document with more than `max` aliases, right after parsing (before validation
/// and before any read).
pub struct AliasLimit(pub usize);

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension(self.0))
    }
}

struct AliasLimitExtension(usize);

#[async_graphql::async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let found = aliases(&doc);
        if found > self.0 {
            return Err(ServerError::new(format!("Query has too many aliases: {found}, at most {}.", self.0), None));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(q: &str) -> usize {
        aliases(&async_graphql::parser::parse_query(q).unwrap())
    }

    #[test]
    fn aliases_are_counted_everywhere_once() {
        assert_eq!(count("{ listing(id: \"x\") { id } }"), 0);
        assert_eq!(count("{ a: listing(id: \"x\") { t: title } b: listing(id: \"y\") { id } }"), 3);
        assert_eq!(count("{ ...F } fragment F on Query { a: me { id } }"), 1);
        assert_eq!(count("query A { a: me { id } } query B { ... on Query { b: me { n: name } } }"), 3);
    }
}
