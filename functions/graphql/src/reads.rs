//! The contexts' states the schema reads through: their handlers' read functions take them.

use std::sync::Arc;

use listings::photos::PhotoStore;
use shared::cursor::CursorKey;
use shared::{SharedClock, Table};

#[derive(Clone)]
pub struct Reads {
    pub listings: listings::AppState,
    pub bookings: bookings::AppState,
    pub reviews: reviews::AppState,
    pub table: Arc<Table>,
    pub cursors: Arc<CursorKey>,
}

impl Reads {
    /// Every context's state over the one table, clock and cursor key.
    pub fn new(table: Arc<Table>, photos: Arc<PhotoStore>, clock: SharedClock, cursors: Arc<CursorKey>) -> Self {
        Self {
            listings: listings::AppState {
                table: table.clone(),
                photos,
                clock: clock.clone(),
                cursors: cursors.clone(),
                // Reads never create calendar imports.
                allow_loopback_feeds: false,
                // Reads never create listings.
                payout_account_required: false,
            },
            // Reads never hold nights: the hold is the create route's.
            bookings: bookings::AppState {
                table: table.clone(),
                clock: clock.clone(),
                cursors: cursors.clone(),
                hold: Default::default(),
                platform_fee_basis_points: 0,
            },
            reviews: reviews::AppState { table: table.clone(), clock, cursors: cursors.clone() },
            table,
            cursors,
        }
    }
}
