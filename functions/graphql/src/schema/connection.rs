//! Relay-style connections over REST's list pages: `first` is REST's `limit` (1 to 100, 20 by
//! default), `after` is REST's `cursor` and `pageInfo.endCursor` its `next_cursor`: the same
//! signed cursors, bound to the same list, caller and filters, so a cursor from one API pages
//! the other. Forward only: a page boundary is the one position the API seals, so edges carry
//! no cursor of their own and `hasPreviousPage` is always false.

use async_graphql::SimpleObject;
use shared::page::ListBody;

use super::booking::Booking;
use super::listing::{ListingSummary, Review};
use super::me::Notification;

/// The complexity of a connection field: its page size times what each node asks for.
pub fn page_complexity(first: Option<i32>, child: usize) -> usize {
    let first = first.map_or(shared::page::DEFAULT_LIMIT as usize, |n| usize::try_from(n.max(1)).unwrap_or(1));
    first.saturating_mul(child).saturating_add(1)
}

/// `first` as REST's `limit`: a negative number is out of range as 0 is (400 on `limit`).
pub fn limit(first: Option<i32>) -> Option<u32> {
    first.map(|n| u32::try_from(n).unwrap_or(0))
}

/// Where a page ends.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Pass as `after` for the next page; null on the last page.
    pub end_cursor: Option<String>,
    /// Always false: connections page forward.
    pub has_previous_page: bool,
    /// Always null: connections page forward.
    pub start_cursor: Option<String>,
}

impl PageInfo {
    fn after(next_cursor: Option<String>) -> Self {
        Self {
            has_next_page: next_cursor.is_some(),
            end_cursor: next_cursor,
            has_previous_page: false,
            start_cursor: None,
        }
    }
}

/// A connection and its edge type for one node type (async-graphql cannot nest a generic
/// object in a generic object, so each is its own pair of types).
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty) => {
        pub struct $edge {
            pub node: $node,
        }

        #[async_graphql::Object]
        impl $edge {
            async fn node(&self) -> &$node {
                &self.node
            }
        }

        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: PageInfo,
        }

        #[async_graphql::Object]
        impl $connection {
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            async fn page_info(&self) -> &PageInfo {
                &self.page_info
            }
        }

        impl $connection {
            /// A REST page as a connection, each item turned into its node.
            pub fn from_page<V>(page: ListBody<V>, node: impl FnMut(V) -> $node) -> Self {
                Self {
                    edges: page.items.into_iter().map(node).map(|node| $edge { node }).collect(),
                    page_info: PageInfo::after(page.next_cursor),
                }
            }
        }
    };
}

connection!(ReviewConnection, ReviewEdge, Review);
connection!(ListingSummaryConnection, ListingSummaryEdge, ListingSummary);
connection!(BookingConnection, BookingEdge, Booking);
connection!(NotificationConnection, NotificationEdge, Notification);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_costs_its_size_times_its_nodes() {
        assert_eq!(page_complexity(None, 3), 61);
        assert_eq!(page_complexity(Some(5), 3), 16);
        assert_eq!(page_complexity(Some(-4), 3), 4);
        assert_eq!(page_complexity(Some(i32::MAX), usize::MAX), usize::MAX);
    }

    #[test]
    fn first_is_rests_limit() {
        assert_eq!(limit(None), None);
        assert_eq!(limit(Some(7)), Some(7));
        assert_eq!(limit(Some(-1)), Some(0));
        assert!(shared::page::parse_limit(limit(Some(-1))).is_err());
        assert!(shared::page::parse_limit(limit(Some(101))).is_err());
    }
}
